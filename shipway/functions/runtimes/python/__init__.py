"""The Python runtime: runtime.py is the host's side, forkserver.py the warm worker in the
sandbox that forks a child per call, and pool.py keeps one such worker per function."""
