"""Server-side request batching with TF Serving's `BatchingParameters` semantics.

Requests to one signature are queued; a batch thread takes the oldest request and joins others of
the same non-batch shapes until `max_batch_size` rows are gathered or `batch_timeout_micros` has
passed since the oldest arrived, runs them as one call and splits the outputs. When
`max_enqueued_batches` batches are already waiting, a new request is refused at once with
RESOURCE_EXHAUSTED (HTTP 429) instead of waiting without bound.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from kerasbrain.serving.errors import ServingError, invalid


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 8
    batch_timeout_micros: int = 5000
    max_enqueued_batches: int = 16
    num_batch_threads: int = 2

    @classmethod
    def from_proto(cls, params) -> BatchingOptions:
        def value(name, default):
            return int(getattr(params, name).value) if params.HasField(name) else default

        d = cls()
        return cls(value("max_batch_size", d.max_batch_size), value("batch_timeout_micros", d.batch_timeout_micros),
                   value("max_enqueued_batches", d.max_enqueued_batches),
                   value("num_batch_threads", d.num_batch_threads))


@dataclass(eq=False)  # tasks compare by identity (their inputs are arrays)
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    key: tuple
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None
    error: BaseException | None = None


class Batcher:
    """Batches calls of `run(inputs) -> outputs` (dicts of arrays with a leading batch axis)."""

    def __init__(self, run, options: BatchingOptions, name: str = "batcher"):
        self.run = run
        self.options = options
        self._queue: deque[_Task] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(options.num_batch_threads, 1))]
        for t in self._threads:
            t.start()

    def submit(self, inputs: dict[str, np.ndarray], timeout: float = 600.0) -> dict[str, np.ndarray]:
        rows = {int(v.shape[0]) for v in inputs.values()}
        if len(rows) != 1:
            raise invalid(f"all inputs must have the same batch size; got {sorted(rows)}")
        n = rows.pop()
        if n > self.options.max_batch_size:
            raise invalid(f"Task size {n} is larger than maximum batch size {self.options.max_batch_size}")
        key = tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in inputs.items()))
        task = _Task(inputs, n, key)
        with self._cond:
            if self._closed:
                raise ServingError("UNAVAILABLE", "the servable is being unloaded")
            queued_rows = sum(t.rows for t in self._queue)
            if queued_rows + n > self.options.max_enqueued_batches * self.options.max_batch_size:
                raise ServingError("RESOURCE_EXHAUSTED", "The batch scheduling queue to which this task was "
                                   "submitted is full")
            self._queue.append(task)
            self._cond.notify()
        if not task.done.wait(timeout):
            raise ServingError("DEADLINE_EXCEEDED", f"no result within {timeout:.0f} s")
        if task.error is not None:
            raise task.error
        return task.result

    def _take_batch(self) -> list[_Task] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed and not self._queue:
                return None
            first = self._queue[0]
            deadline = first.enqueued + self.options.batch_timeout_micros / 1e6
            while True:
                same = [t for t in self._queue if t.key == first.key]
                if sum(t.rows for t in same) >= self.options.max_batch_size or self._closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                if first not in self._queue:  # another thread took it
                    return []
            batch, rows = [], 0
            for t in list(self._queue):
                if t.key == first.key and rows + t.rows <= self.options.max_batch_size:
                    batch.append(t)
                    rows += t.rows
            for t in batch:
                self._queue.remove(t)
            return batch

    def _loop(self):
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                continue
            try:
                names = batch[0].inputs.keys()
                joined = {k: np.concatenate([t.inputs[k] for t in batch]) for k in names}
                outputs = self.run(joined)
                start = 0
                for t in batch:
                    t.result = {k: v[start:start + t.rows] for k, v in outputs.items()}
                    start += t.rows
            except BaseException as exc:  # handed to every waiting request, never kills the thread
                for t in batch:
                    t.error = exc
            for t in batch:
                t.done.set()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()
