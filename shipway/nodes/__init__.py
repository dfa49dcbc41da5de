"""The data plane of one machine: a node process that owns the public port (the router) and
the app instances, apart from the control plane, so apps keep answering while the control
plane is killed, restarted or upgraded."""
