"""shipway's API client: what the CLI, the git server's pre-receive hook and builders on
other machines share to talk to a shipway server.

It is a package of its own, below the CLI, so code outside the command line can call the
API without importing Typer or Rich. Its failures are `shipway.errors.ClientError`s, which
the CLI prints as one line.
"""
