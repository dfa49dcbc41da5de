"""Functions: small JS and Python handlers, called over HTTP, on schedules or from each other.

What people ask (deploy, roll back, delete, apply a manifest, call) is a command in
commands.py: each writes the store (service.py; manifest.py for a whole manifest, whose
functions are declared as in declared.py), then tells the function workers which version
runs (registry.py, a NATS KV bucket) and brings the schedules in step (schedules/). A call,
however it came, goes through invoke.py, which records the run (records.py; its lifecycle
and outcome in outcome.py) and runs it in its runtime (runtimes/js, runtimes/python).
worker.py puts the runtimes, registry and invoker of one process together; a schedule starts
workflow.py's FunctionRunWorkflow, whose activities (activities.py) do the running.
"""
