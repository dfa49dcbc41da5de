"""Functions: small JS and Python handlers, called over HTTP, on schedules or from each other."""
