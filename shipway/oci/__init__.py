"""OCI images and containers through podman: Dockerfile builds, the images they start from,
and the containers their releases run as."""
