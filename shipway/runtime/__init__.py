"""The node agent: runs releases as sandboxed instances, checks their health, restarts them,
scales them (to zero, too) and keeps the router pointed at the healthy ones."""
