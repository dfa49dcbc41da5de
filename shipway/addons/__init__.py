"""Databases and caches attached to apps (PostgreSQL, Redis): their servers, the database or
server each add-on gets, its credentials, backups, and what an app's sandboxes see of it."""
