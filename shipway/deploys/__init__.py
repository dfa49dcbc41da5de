"""Deployment lifecycle: builds and deployments from queued to a terminal state."""
