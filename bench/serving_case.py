"""One BraTS-size case through a served model: window by window, and as one request.

    python bench/serving_case.py [--shape 240 240 155] [--repeats 3] [--json FILE]

Exports the default 3-D U-Net with the default inference settings (window 128^3, overlap 0.5,
one window per batch, no mirroring), starts `kerasbrain serve` in its own process and predicts one
phantom case of `--shape` (4 modalities) the ways a client can:

- in-process (`kerasbrain predict --model`, the reference),
- window by window over gRPC (`serving_default`; the client cuts, blends and decodes),
- as one request over gRPC (`segment_case`, the label map back),
- as one request over REST, gzip-compressed int16 (`segment_case_compressed`).

For each: the median latency over `--repeats`, the bytes sent and received, and the peak resident
memory of the server process while it answered; every served label map is checked against the
in-process one.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
from common import add_json_option, record  # noqa: E402

from kerasbrain.data.labels import regions_to_labels  # noqa: E402
from kerasbrain.data.phantom import make_phantom  # noqa: E402
from kerasbrain.data.preprocess import Preprocessed, nonzero_bbox  # noqa: E402
from kerasbrain.export.saved_model import export_version  # noqa: E402
from kerasbrain.inference.config import InferenceConfig  # noqa: E402
from kerasbrain.inference.predict_volume import predict_probabilities  # noqa: E402
from kerasbrain.intensity import head_statistics  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.runtime import predictor  # noqa: E402
from kerasbrain.serving import client as client_module  # noqa: E402
from kerasbrain.serving.client import GrpcClient, RestClient  # noqa: E402
from kerasbrain.serving.remote_predictor import RemoteCasePredictor, RemoteWindowPredictor  # noqa: E402


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`kerasbrain serve` in a child process, with its resident memory sampled while asked to."""

    def __init__(self, base: Path):
        self.rest, self.grpc = _free_port(), _free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--model-name", "bench",
                                      "--model-base-path", str(base), "--rest-port", str(self.rest),
                                      "--grpc-port", str(self.grpc), "--poll-seconds", "0", "--max-body-mb", "1024"],
                                     cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.peak, self._stop = 0.0, threading.Event()
        client = RestClient(f"http://127.0.0.1:{self.rest}", "bench", timeout=5)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if client.available_versions():
                    return
            except client_module.ServingClientError:
                time.sleep(0.5)
        raise RuntimeError("the server did not start within 300 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def measure(self, fn):
        """(result, seconds, server peak RSS in MB) of fn()."""
        self.peak, self._stop = self.rss_mb(), threading.Event()

        def sample():
            while not self._stop.wait(0.05):
                self.peak = max(self.peak, self.rss_mb())

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        try:
            result = fn()
        finally:
            seconds = time.perf_counter() - start
            self._stop.set()
            sampler.join()
        return result, seconds, self.peak

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


class Traffic:
    """Counts the bytes the serving clients send and receive (gRPC messages, REST bodies)."""

    def __init__(self):
        self.sent = self.received = 0
        grpc_call, rest_request = GrpcClient._call, RestClient._request
        traffic = self

        def counted_call(client, method, request):
            traffic.sent += request.ByteSize()
            response = grpc_call(client, method, request)
            traffic.received += response.ByteSize()
            return response

        def counted_request(client, method, path, body=None):
            import json

            traffic.sent += len(json.dumps(body).encode()) if body is not None else 0
            response = rest_request(client, method, path, body)
            traffic.received += len(json.dumps(response).encode())
            return response

        GrpcClient._call, RestClient._request = counted_call, counted_request

    def reset(self):
        self.sent = self.received = 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[240, 240, 155])
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    image, _ = make_phantom(tuple(args.shape), seed=3)
    image = np.round(image * 300).astype(np.float32)  # whole numbers, as scanners store them
    bbox = nonzero_bbox(image)
    crop = image[tuple(slice(a, b) for a, b in bbox)]
    mean, std = head_statistics(crop)
    pre = Preprocessed("bench", crop, None, bbox, tuple(args.shape), (1.0, 1.0, 1.0), mean, std)
    cfg = InferenceConfig()
    model = UNet()
    traffic = Traffic()
    with tempfile.TemporaryDirectory() as tmp:
        export_version(model, "bench", tmp, version=1, manifest_extra={"inference": dataclasses.asdict(cfg)})
        server = ServerProcess(Path(tmp) / "bench")
        try:
            grpc_client = GrpcClient(f"127.0.0.1:{server.grpc}", "bench")
            rest_client = RestClient(f"http://127.0.0.1:{server.rest}", "bench")
            settings = dataclasses.asdict(cfg)
            ways = {
                "in-process": predictor(model),
                "gRPC, window by window": RemoteWindowPredictor(grpc_client),
                "gRPC, one request": RemoteWindowPredictor(grpc_client, case_settings=settings,
                                                           fetch_probabilities=False),
                "REST gzip int16, one request": RemoteWindowPredictor(rest_client, case_settings=settings,
                                                                      fetch_probabilities=False),
            }
            reference = None
            print(f"one case {args.shape} x 4 (head box {[b - a for a, b in bbox]}), window {cfg.window[0]}^3, "
                  f"overlap {cfg.overlap}, {args.repeats} repeats, {os.cpu_count()} CPUs")
            print(f"{'way':30s} {'median s':>9s} {'sent MB':>9s} {'received MB':>12s} {'server peak MB':>15s}")
            for name, predict in ways.items():
                assert (name == "in-process") or name.endswith("window") or isinstance(
                    predict.volume_predictor(cfg.window, cfg.overlap, cfg.batch_size, cfg.mirror, cfg.blend),
                    RemoteCasePredictor)
                times, peaks = [], []
                for repeat in range(args.repeats + 1):  # the first is a warm-up
                    traffic.reset()
                    probs, seconds, peak = server.measure(lambda: predict_probabilities(pre, predict, 3, cfg))
                    if repeat:
                        times.append(seconds)
                        peaks.append(peak)
                labels = regions_to_labels(probs >= cfg.threshold)
                if reference is None:
                    reference = labels
                differing = int((labels != reference).sum())
                row = dict(way=name, seconds=statistics.median(times), sent_mb=traffic.sent / 1e6,
                           received_mb=traffic.received / 1e6, server_peak_mb=max(peaks),
                           voxels_differing_from_in_process=differing)
                print(f"{name:30s} {row['seconds']:9.1f} {row['sent_mb']:9.1f} {row['received_mb']:12.1f} "
                      f"{row['server_peak_mb']:15.0f}" + (f"  ({differing} voxels differ)" if differing else ""))
                record(args.json, "serving_case", shape=args.shape, window=list(cfg.window), overlap=cfg.overlap,
                       repeats=args.repeats, **row)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
