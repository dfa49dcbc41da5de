"""What a long-running shipway process does while it loads its modules."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """Import a process's modules with Python's cycle collector paused, then collect once and
    freeze what is left: the modules, classes and tables live as long as the process. Collecting
    on the way walked them again and again (about a tenth of the server's import time), and
    later full collections no longer walk them."""
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()
