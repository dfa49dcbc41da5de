"""Content-addressed layers and release manifests."""
