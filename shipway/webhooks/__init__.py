"""Webhooks from git hosts: verifying a delivery and reading what it says."""
