"""The sandbox's supervisor: `python -I -S reaper.py PID` reaps every process that ends up
below it, then exits as PID (bubblewrap) did.

The process shipway forks for a sandbox becomes this program at once (see child.py), so that
a sandbox costs a bare interpreter (a few MiB) rather than a copy of shipway's whole memory.
Its child subreaper and parent-death settings were made before the exec, which keeps them.
It imports only what the interpreter has built in: no site, no path, no environment.
"""

import os
import sys


def reap(bwrap: int) -> int:
    """Wait for every child until none is left; bubblewrap's exit code (128 + N for signal N)."""
    code = 255
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return code
        if pid == bwrap:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code


if __name__ == "__main__":
    os._exit(reap(int(sys.argv[1])))
