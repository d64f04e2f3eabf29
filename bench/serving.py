"""Serving overhead: requests/s and p50/p99 latency over REST and gRPC at several concurrencies.

    python bench/serving.py [--window 32] [--requests 64] [--concurrency 1 8 32] [--no-batching]

Exports the default 5.7 M-parameter 3-D U-Net, starts the embedded TF-Serving-compatible server on
loopback (with serving/batching.config unless --no-batching), and sends single-window requests.
The same window through the Keras model and through the loaded SavedModel in-process gives the
baseline, so the serving overhead is a ratio.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import add_json_option, record  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasbrain.export.saved_model import export_version  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.runtime import predictor  # noqa: E402
from kerasbrain.serving.client import GrpcClient, RestClient  # noqa: E402
from kerasbrain.serving.server import ServerOptions, build_server  # noqa: E402

SERVING = Path(__file__).resolve().parents[1] / "serving"


def measure(call, requests: int, concurrency: int):
    latencies = []

    def one(_):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)

    call()  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return requests / elapsed, statistics.median(latencies), q[98]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--no-batching", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    inputs = {"image": rng.normal(500, 100, (1,) + (args.window,) * 3 + (4,)).astype(np.float32),
              "channel_mean": np.full((1, 4), 500, np.float32), "channel_std": np.full((1, 4), 100, np.float32)}
    model = UNet()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_version(model, "bench", tmp)
        keras_predict = predictor(model)
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        batching = None if args.no_batching else SERVING / "batching.config"
        server = build_server(model_name="bench", model_base_path=Path(tmp) / "bench", batching_config=batching,
                              options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0)).start()
        rest = RestClient(f"http://127.0.0.1:{server.rest_port}", "bench")
        grpc_client = GrpcClient(f"127.0.0.1:{server.grpc_port}", "bench")
        calls = {
            "SavedModel in-process": lambda: signature(**tensors),
            "keras in-process": lambda: keras_predict(inputs["image"], inputs["channel_mean"], inputs["channel_std"]),
            "gRPC": lambda: grpc_client.predict(inputs),
            "REST": lambda: rest.predict(inputs),
        }
        print(f"window {args.window}^3 x 4 channels, batch 1, {args.requests} requests per row, "
              f"batching={'off' if args.no_batching else 'serving/batching.config'}, {os.cpu_count()} CPUs")
        print(f"{'path':24s} {'conc':>4s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs in-process':>13s}")
        baseline = {}
        try:
            for concurrency in args.concurrency:
                for name, call in calls.items():
                    rps, p50, p99 = measure(call, args.requests, concurrency)
                    if name == "SavedModel in-process":
                        baseline[concurrency] = rps
                    ratio = baseline.get(concurrency, rps) / rps
                    print(f"{name:24s} {concurrency:4d} {rps:8.2f} {p50 * 1e3:8.1f} {p99 * 1e3:8.1f} {ratio:12.2f}x")
                    record(args.json, "serving", path=name, concurrency=concurrency, window=args.window,
                           requests=args.requests, batching=not args.no_batching, requests_per_second=rps,
                           p50_ms=p50 * 1e3, p99_ms=p99 * 1e3, slower_than_in_process=ratio)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
