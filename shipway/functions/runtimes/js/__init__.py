"""The JS runtime: runtime.py drives V8 isolates; bootstrap.js is the script it installs in
each one before the user's code."""
