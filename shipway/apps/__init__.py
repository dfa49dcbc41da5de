"""Apps and their environments."""
