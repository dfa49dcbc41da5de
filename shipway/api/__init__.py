"""The HTTP edge: REST API, auth, error mapping. Domain errors become responses here only."""
