"""Bounded admission: a request waits in a short line for capacity, or is refused with RESOURCE_EXHAUSTED.

Two limits keep a server's memory bounded whatever arrives at once:

- REST bodies: the bytes of request bodies being read and parsed at once (`max_inflight_mb`),
  checked from Content-Length before the body is read (a refused one is dropped piece by piece,
  never held: `rest.py`; gRPC bounds its own: at most
  `grpc_workers` messages of at most `grpc_max_message_bytes` are held);
- whole cases: how many whole-case requests run at once (`case_slots`); one BraTS-size case
  needs about 2 GB of working memory in the graph, whatever encoding it arrived in.

Beyond the capacity a request waits (at most `max_waiting` of them, each at most `wait_seconds`);
beyond that it is answered 429 / RESOURCE_EXHAUSTED at once, so clients back off instead of the
process being killed for memory.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from kerasbrain.serving.errors import ServingError


class Admission:
    """Capacity in units (bytes, or requests), a bounded waiting line, and refusals beyond both."""

    def __init__(self, capacity: int, max_waiting: int, wait_seconds: float, what: str, unit: str = ""):
        self.capacity, self.max_waiting, self.wait_seconds = int(capacity), int(max_waiting), float(wait_seconds)
        self.what, self.unit = what, unit
        self.in_use = self.waiting = self.refused = self.peak = 0  # peak: the most in use at once
        self._condition = threading.Condition()

    def _busy(self, amount: int) -> ServingError:
        self.refused += 1
        return ServingError("RESOURCE_EXHAUSTED",
                            f"server busy: {self.what} at capacity ({self.in_use}/{self.capacity}{self.unit} in use, "
                            f"{self.waiting} waiting); retry later")

    @contextmanager
    def admit(self, amount: int = 1):
        amount = int(amount)
        with self._condition:
            if amount > self.capacity:
                self.refused += 1
                raise ServingError("RESOURCE_EXHAUSTED", f"{self.what}: a request of {amount}{self.unit} exceeds "
                                   f"the server's capacity of {self.capacity}{self.unit}")
            if self.in_use + amount > self.capacity:
                if self.waiting >= self.max_waiting:
                    raise self._busy(amount)
                self.waiting += 1
                deadline = time.monotonic() + self.wait_seconds
                try:
                    while self.in_use + amount > self.capacity:
                        left = deadline - time.monotonic()
                        if left <= 0 or not self._condition.wait(left) and self.in_use + amount > self.capacity:
                            raise self._busy(amount)
                finally:
                    self.waiting -= 1
            self.in_use += amount
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._condition:
                self.in_use -= amount
                self._condition.notify_all()
