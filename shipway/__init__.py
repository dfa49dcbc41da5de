"""shipway: turn a git push into a live, isolated deployment on your own machines."""

__version__ = "0.1.0"

import sys

# `import httpx` also loads httpx's own command-line client (with rich and pygments) when it can:
# shipway never runs it, and every shipway process and command would load it (about 20-40 ms).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
