"""The activity log: every action recorded in the same transaction as the change."""
