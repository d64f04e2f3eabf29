import threading
import time

import numpy as np
import pytest

from kerasbrain.serving.batching import Batcher, BatchingOptions
from kerasbrain.serving.errors import ServingError


def test_concurrent_requests_are_joined_and_split_back():
    calls = []

    def run(inputs):
        calls.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    batcher = Batcher(run, BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    results = {}

    def submit(i):
        results[i] = batcher.submit({"x": np.full((1, 3), i, np.float32)})["y"]

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i in range(6):
        np.testing.assert_array_equal(results[i], np.full((1, 3), 2 * i))
    assert sum(calls) == 6 and len(calls) < 6  # at least some requests shared a call


def test_different_shapes_are_never_mixed():
    shapes = []

    def run(inputs):
        shapes.append(inputs["x"].shape)
        return {"y": inputs["x"]}

    batcher = Batcher(run, BatchingOptions(max_batch_size=4, batch_timeout_micros=50_000, num_batch_threads=2))
    threads = [threading.Thread(target=batcher.submit, args=({"x": np.zeros((1, n))},)) for n in (2, 3, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    items_by_width = {}
    for rows, width in shapes:  # each call's batch has one width by construction of an array ...
        items_by_width[width] = items_by_width.get(width, 0) + rows
    # ... so what must hold is that every request arrived, none padded or merged across widths
    assert items_by_width == {2: 2, 3: 2}
    assert len(shapes) >= 2


def _wait_for(condition, seconds: float = 10.0) -> None:
    """Wait until `condition()` holds (events, not fixed sleeps, order the threads); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.005)


def test_full_queue_is_refused_at_once():
    release, running = threading.Event(), threading.Event()

    def slow(inputs):
        running.set()
        release.wait(10)
        return {"y": inputs["x"]}

    batcher = Batcher(slow, BatchingOptions(max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=1,
                                            num_batch_threads=1))
    first = threading.Thread(target=batcher.submit, args=({"x": np.zeros((1, 1))},))
    first.start()
    assert running.wait(10)  # the first is running ...
    second = threading.Thread(target=batcher.submit, args=({"x": np.zeros((1, 1))},))
    second.start()
    _wait_for(lambda: len(batcher._queue) == 1)  # ... and the second fills the queue
    start = time.monotonic()
    with pytest.raises(ServingError) as info:
        batcher.submit({"x": np.zeros((1, 1))})
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.http_status == 429
    assert time.monotonic() - start < 0.5
    release.set()
    first.join()
    second.join()
    batcher.close()


def test_model_errors_reach_every_request_and_the_thread_survives():
    def broken(inputs):
        if inputs["x"].sum() > 0:
            raise ServingError("INVALID_ARGUMENT", "bad values")
        return {"y": inputs["x"]}

    batcher = Batcher(broken, BatchingOptions(max_batch_size=2, batch_timeout_micros=0, num_batch_threads=1))
    with pytest.raises(ServingError, match="bad values"):
        batcher.submit({"x": np.ones((1, 1))})
    assert batcher.submit({"x": np.zeros((1, 1))})["y"].shape == (1, 1)
    with pytest.raises(ServingError, match="larger than maximum batch size 2"):
        batcher.submit({"x": np.zeros((3, 1))})
    batcher.close()
