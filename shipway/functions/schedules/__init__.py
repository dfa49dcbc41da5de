"""When functions run on their own: triggers.py reads a trigger's spec (cron or ISO-8601) and
plans its runs, temporal.py makes a trigger a Temporal Schedule, and sync.py keeps a
function's schedules in step with its triggers in the store."""
