"""A load generator on loopback: threads that send keep-alive requests to one host until told
to stop, counting answers by status and failures by error."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class Load:
    """CLIENTS threads asking PORT for HOST's PATH, each over one kept-alive connection."""

    def __init__(self, port: int, host: str, clients: int = 4, path: str = "/") -> None:
        self.port = port
        self.host = host
        self.path = path
        self.clients = clients
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def served_more_than(self, count: int) -> bool:
        return self.tally.ok > count

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path, headers={"Host": self.host})
                response = conn.getresponse()
                response.read()
                outcome = "ok" if response.status == 200 else f"status {response.status}"
            except (OSError, http.client.HTTPException) as e:
                outcome = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                time.sleep(0.01)
            with self._lock:
                if outcome == "ok":
                    self.tally.ok += 1
                else:
                    self.tally.failed[outcome] += 1
        conn.close()
