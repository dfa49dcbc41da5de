"""The `shipway` command."""
