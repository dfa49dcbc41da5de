"""shipway: turn a git push into a live, isolated deployment on your own machines."""

__version__ = "0.1.0"
