"""`make fuzz`: schemathesis over /api/v1/openapi.json against a real `shipway up` (a fresh data
dir), as the platform's owner. Passes when no answer is a server error and every answer
conforms to the schema: its status, content type, headers and body.

Left out: the three live streams (an answer that never ends; tests/logs covers them) and
revoking a token (the fuzzer would revoke its own; tests/api covers it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import start, stop

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
LEFT_OUT = (
    "build_logs_api_v1_builds__build_id__logs_get",
    "app_logs_api_v1_apps__app__logs_get",
    "tail_entries_api_v1_audit_tail_get",
    "revoke_token_api_v1_tokens__token_id__delete",
)
#: Cases per operation, and the run's time budget in seconds: well under two minutes.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
BUDGET = int(os.environ.get("FUZZ_SECONDS", "30"))


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="shipway-fuzz-") as tmp:
        instance = start(Path(tmp), "data")
        try:
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{instance.url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {instance.token}",
                "--checks",
                ",".join(CHECKS),
                *(f"--exclude-operation-id={op}" for op in LEFT_OUT),
                "--max-examples",
                str(EXAMPLES),
                "--max-time",
                str(BUDGET),
                # One worker: with two threads, Hypothesis's ast.parse calls race in CPython
                # 3.11 ("AST constructor recursion depth mismatch") and fail the run.
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-shrink",
                *extra,
            ]
            began = time.monotonic()
            code = subprocess.run(command, cwd=tmp, check=False).returncode
            print(f"fuzz: schemathesis took {time.monotonic() - began:.0f} s", file=sys.stderr)
            logged = (instance.data / "shipway.log").read_text(errors="replace")
            if "Traceback" in logged:
                print(f"fuzz: the server logged a traceback:\n{logged}", file=sys.stderr)
                code = code or 1
            return code
        finally:
            stop(instance)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
