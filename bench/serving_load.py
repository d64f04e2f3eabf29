"""The server under load while its versions change: failures, latency, versions, memory.

    python bench/serving_load.py [--seconds 40] [--clients 6] [--window 16] [--case-side 40]
                                 [--burst 12] [--burst-side 96]

Starts the embedded TF-Serving-compatible server on loopback with a `models.config`, then for
`--seconds` runs `--clients` threads sending gRPC and REST predictions of one window while a
swapper adds new versions, drops in a broken version, adds and removes a second model in the
config and lets the version policy retire old versions; other threads send malformed requests
(NaN values: must get 400 / INVALID_ARGUMENT), hold slow-loris connections that never finish
their headers, and disconnect in the middle of a large body. Prints requests sent and failed per
protocol, p50/p99 latency, the versions that answered, the swaps done, 4xx answers to bad requests
and the process's resident memory before and after the retired versions were unloaded.
Two more clients send whole cases all along (gRPC `segment_case`, REST `segment_case_compressed`;
a busy answer is backed off from and retried). Then a burst of `--burst` whole cases of
`--burst-side`^2 x 0.65 `--burst-side` x 4 arrive at once over gRPC against 2 whole-case slots and
4 waiting places: each is answered, or refused with RESOURCE_EXHAUSTED, never dropped; the most
cases that ran at once and the resident memory's peak during the burst are reported.
Every request is bounded in time; everything stays on 127.0.0.1.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(1, os.path.join(os.path.dirname(__file__), ".."))  # the checkout this script is in

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from common import machine  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from kerasbrain.export.compressed import encode_case  # noqa: E402
from kerasbrain.export.saved_model import export_version  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.serving.client import GrpcClient, RestClient, ServingClientError, with_retries  # noqa: E402
from kerasbrain.serving.server import ServerOptions, build_server  # noqa: E402

CONFIG = """model_config_list {{
{entries}}}
"""
ENTRY = """  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow"
           model_version_policy {{ latest {{ num_versions: 2 }} }} }}
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    """Client threads that record (protocol, ok, latency, version, error) per request."""

    def __init__(self, server, window: int, case_side: int):
        rng = np.random.default_rng(0)
        self.case = np.zeros((1, case_side, case_side, case_side, 4), np.float32)
        inner = slice(2, case_side - 2)
        self.case[0, inner, inner, inner] = np.round(rng.normal(500, 100, (case_side - 4,) * 3 + (4,)))
        self.burst_answers, self.backoffs, self.rss_peak = Counter(), Counter(), 0.0
        self.inputs = {"image": rng.normal(500, 100, (1,) + (window,) * 3 + (4,)).astype(np.float32),
                       "channel_mean": np.full((1, 4), 500, np.float32),
                       "channel_std": np.full((1, 4), 100, np.float32)}
        self.rest = f"http://127.0.0.1:{server.rest_port}"
        self.grpc_target = f"127.0.0.1:{server.grpc_port}"
        self.records, self.bad_answers, self.lock = [], Counter(), threading.Lock()
        self.stop = threading.Event()
        self.states_seen = {}  # version -> {state: error message}

    def _record(self, *row):
        with self.lock:
            self.records.append(row)

    def grpc_client(self):
        channel = grpc.insecure_channel(self.grpc_target, options=[("grpc.max_receive_message_length", 2**28)])
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "brain"
        for key, value in self.inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                response = stub.Predict(request, timeout=30)
                self._record("grpc", True, time.perf_counter() - start, response.model_spec.version.value, "")
            except grpc.RpcError as exc:
                self._record("grpc", False, time.perf_counter() - start, None, exc.code().name)

    def rest_client(self):
        body = json.dumps({"inputs": {k: v.tolist() for k, v in self.inputs.items()}}).encode()
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                request = urllib.request.Request(f"{self.rest}/v1/models/brain:predict", body,
                                                 {"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=60).read()
                self._record("rest", True, time.perf_counter() - start, None, "")
            except (urllib.error.URLError, OSError) as exc:
                self._record("rest", False, time.perf_counter() - start, None, str(exc)[:80])

    def _case_client(self, protocol, call):
        """Whole cases one after the other; a busy answer (429) is backed off from and retried, as
        `kerasbrain predict --server` does, and counted apart from failures."""
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                with_retries(call, on_busy=lambda: self.backoffs.update([protocol]))
                self._record(protocol, True, time.perf_counter() - start, None, "")
            except ServingClientError as exc:
                self._record(protocol, False, time.perf_counter() - start, None, str(exc.status))

    def case_grpc_client(self):
        """Whole cases over gRPC (`segment_case`)."""
        client = GrpcClient(self.grpc_target, "brain", timeout=120)
        self._case_client("case-grpc", lambda: client.predict({"image": self.case}, "segment_case",
                                                              output_filter=["mask"]))

    def case_rest_client(self):
        """Whole cases over REST as gzip bytes (`segment_case_compressed`)."""
        client = RestClient(self.rest, "brain", timeout=120)
        inputs = encode_case(self.case[0], "int16")
        self._case_client("case-rest", lambda: client.predict(inputs, "segment_case_compressed"))

    def burst(self, count: int, side: int):
        """`count` whole cases of side^2 x 0.65 side at once over gRPC; answers counted by status."""
        self.rss_peak = rss_mb()
        rng = np.random.default_rng(1)
        case = np.round(rng.normal(500, 100, (1, side, side, max(int(side * 0.65), 8), 4))).astype(np.float32)
        client = GrpcClient(self.grpc_target, "brain", timeout=600)

        def one(_):
            try:
                client.predict({"image": case}, "segment_case", output_filter=["mask"])
                return "OK"
            except ServingClientError as exc:
                return str(exc.status)

        with ThreadPoolExecutor(count) as pool:
            self.burst_answers.update(pool.map(one, range(count)))

    def warm_up(self):
        """One request of each kind and shape, so that the memory measured after it is what serving holds."""
        grpc_client, rest = GrpcClient(self.grpc_target, "brain"), RestClient(self.rest, "brain")
        grpc_client.predict(self.inputs)
        rest.predict(self.inputs)
        grpc_client.predict({"image": self.case}, "segment_case", output_filter=["mask"])
        rest.predict(encode_case(self.case[0], "int16"), "segment_case_compressed")

    def memory_sampler(self):
        while not self.stop.wait(0.05):
            self.rss_peak = max(self.rss_peak, rss_mb())

    def status_monitor(self):
        """Polls the model status endpoint: the states each version was seen in, with load errors."""
        while not self.stop.wait(0.1):
            try:
                with urllib.request.urlopen(f"{self.rest}/v1/models/brain", timeout=10) as response:
                    body = json.loads(response.read())
            except (urllib.error.URLError, OSError, ValueError):
                continue
            for status in body.get("model_version_status", []):
                seen = self.states_seen.setdefault(int(status["version"]), {})
                seen.setdefault(status["state"], status.get("status", {}).get("error_message", ""))

    def malformed_client(self):
        body = json.dumps({"inputs": {"image": [[[[[float("nan")] * 4]]]], "channel_mean": [[0, 0, 0, 0]],
                                      "channel_std": [[1, 1, 1, 1]]}}).encode()
        while not self.stop.wait(0.3):
            try:
                urllib.request.urlopen(urllib.request.Request(f"{self.rest}/v1/models/brain:predict", body),
                                       timeout=30)
                self.bad_answers["2xx (should have been refused)"] += 1
            except urllib.error.HTTPError as exc:
                self.bad_answers[f"{exc.code}"] += 1
            except OSError as exc:
                self.bad_answers[f"no answer: {exc}"[:60]] += 1

    def slow_loris(self):
        """Connections that send a header byte now and then and never finish."""
        sockets = []
        while not self.stop.wait(1.0):
            try:
                s = socket.create_connection(("127.0.0.1", int(self.rest.rsplit(":", 1)[1])), timeout=5)
                s.sendall(b"POST /v1/models/brain:predict HTTP/1.1\r\nHost: x\r\n")
                sockets.append(s)
                for old in sockets:
                    old.sendall(b"X-a: b\r\n")
            except OSError:
                pass
        for s in sockets:
            s.close()

    def disconnector(self):
        """Clients that announce a 50 MB body, send a little of it and hang up."""
        port = int(self.rest.rsplit(":", 1)[1])
        while not self.stop.wait(0.7):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"POST /v1/models/brain:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
                    s.sendall(b'{"inputs": {"image": [' + b"1.0," * 10000)
            except OSError:
                pass


def new_version(base: Path, version: int) -> None:
    """Version `version` as a copy of version 1, written aside and renamed (as an export does)."""
    tmp = base / f".tmp-{version}"
    shutil.copytree(base / "1", tmp)
    tmp.rename(base / str(version))


def swapper(base: Path, config: Path, seconds: float, log: list, states_seen: dict):
    """New versions, a broken one, a second model in the config and out again, spread over the run.

    The broken version stays until the status endpoint has reported its load failure (at most
    30 s): on a busy machine the poller may take longer than one pause to try it.
    """
    pause = seconds / 8

    def step(what):
        log.append((time.perf_counter(), what))
        time.sleep(pause)

    time.sleep(pause)
    new_version(base, 2)
    step("version 2 added")
    new_version(base, 3)
    step("version 3 added (version 1 retires: policy latest 2)")
    broken = base / "9"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    step("broken version 9 dropped in")
    deadline = time.perf_counter() + 30
    while "END" not in states_seen.get(9, {}) and time.perf_counter() < deadline:
        time.sleep(0.1)
    shutil.rmtree(broken)
    step("broken version 9 removed")
    config.write_text(CONFIG.format(entries=ENTRY.format(name="brain", path=base)
                                    + ENTRY.format(name="second", path=base)))
    step("config: model 'second' added")
    config.write_text(CONFIG.format(entries=ENTRY.format(name="brain", path=base)))
    step("config: model 'second' removed")
    new_version(base, 4)
    step("version 4 added (version 2 retires)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--case-side", type=int, default=40, help="Side of the steady whole-case requests.")
    parser.add_argument("--burst", type=int, default=12, help="Whole cases sent at once halfway (0 = none).")
    parser.add_argument("--burst-side", type=int, default=96, help="Side of the burst's cases (240: BraTS-size).")
    parser.add_argument("--json", type=Path, help="Also write the figures here (tests/serving/test_load.py).")
    args = parser.parse_args()
    model = UNet(base_filters=8, depth=3)
    burst_shape = [args.burst_side, args.burst_side, max(int(args.burst_side * 0.65), 8), 4]
    settings = {"window": [32, 32, 32], "overlap": 0.5, "batch_size": 2, "mirror": False, "threshold": 0.5}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "brain"
        export_version(model, "brain", tmp, 1, manifest_extra={"inference": settings})
        config = Path(tmp) / "models.config"
        config.write_text(CONFIG.format(entries=ENTRY.format(name="brain", path=base)))
        server = build_server(model_config_file=config,
                              options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0.5,
                                                    max_body_bytes=8 * 1024**2, case_slots=2,
                                                    max_waiting=4)).start()
        try:
            load, swaps = Load(server, args.window, args.case_side), []
            load.warm_up()  # so that growth below is the versions' own
            time.sleep(1)
            rss_start = rss_mb()
            threads = [threading.Thread(target=load.grpc_client if i % 2 == 0 else load.rest_client)
                       for i in range(args.clients)]
            threads += [threading.Thread(target=t) for t in (load.malformed_client, load.slow_loris,
                                                              load.disconnector, load.status_monitor,
                                                              load.case_grpc_client, load.case_rest_client)]
            swap = threading.Thread(target=swapper, args=(base, config, args.seconds, swaps, load.states_seen))
            start = time.perf_counter()
            for t in threads + [swap]:
                t.start()
            swap.join()
            time.sleep(max(0.0, args.seconds - (time.perf_counter() - start)))
            load.stop.set()
            for t in threads:
                t.join(timeout=900)
            settle_deadline = time.monotonic() + 120  # the last version loads and the policy retires the old ones
            while time.monotonic() < settle_deadline and any(
                    s.state in ("LOADING", "START", "UNLOADING") or (v in (1, 2) and s.state != "END")
                    for v, s in server.manager.status("brain")):
                time.sleep(0.2)
            rss_end = rss_mb()
            states = {v: s.state for v, s in server.manager.status("brain")}
            if args.burst:  # then many whole cases at once, against the two slots and four waiting places
                load.stop.clear()
                sampler = threading.Thread(target=load.memory_sampler)
                sampler.start()
                load.burst(args.burst, args.burst_side)
                load.stop.set()
                sampler.join()
            case_peak = server.manager.case_admission.peak
        finally:
            server.stop()
    records = load.records
    print(f"{args.seconds:.0f} s, {args.clients} clients (gRPC and REST), window {args.window}^3 x 4, "
          f"versions 1 -> 4 with a broken one and a config edit")
    latency_ms = {}
    for protocol in ("grpc", "rest", "case-grpc", "case-rest"):
        mine = [r for r in records if r[0] == protocol]
        ok = [r[2] for r in mine if r[1]]
        errors = Counter(r[4] for r in mine if not r[1])
        q = statistics.quantiles(ok, n=100) if len(ok) > 1 else [float("nan")] * 99
        latency_ms[protocol] = {"p50": statistics.median(ok) * 1000 if ok else None, "p99": q[98] * 1000}
        print(f"{protocol}: {len(mine)} requests, {len(mine) - len(ok)} failed {dict(errors) or ''}; "
              f"p50 {statistics.median(ok) * 1000 if ok else float('nan'):.0f} ms, p99 {q[98] * 1000:.0f} ms")
    versions = Counter(r[3] for r in records if r[0] == "grpc" and r[1])
    print(f"versions that answered gRPC requests: {dict(sorted(versions.items()))}")
    print(f"malformed requests (NaN values): {dict(load.bad_answers)}")
    for when, what in swaps:
        print(f"  +{when - start:5.1f} s  {what}")
    print(f"final version states: {states}")
    print(f"resident memory: {rss_start:.0f} MB with version 1 loaded, {rss_end:.0f} MB at the end "
          f"(versions {sorted(v for v, s in states.items() if s == 'AVAILABLE')} loaded)")
    for version, seen in sorted(load.states_seen.items()):
        print(f"  version {version} seen as: " + ", ".join(f"{state} ({error[:60]})" if error else state
                                                        for state, error in seen.items()))
    print(f"burst of {args.burst} whole cases {burst_shape} at once: {dict(load.burst_answers)}; at most "
          f"{case_peak} whole cases ran at once (2 slots); resident memory peak {load.rss_peak:.0f} MB "
          f"(before it {rss_end:.0f} MB); busy answers backed off by the steady case clients: {dict(load.backoffs)}")
    protocols = ("grpc", "rest", "case-grpc", "case-rest")
    failed = sum(1 for r in records if not r[1])
    if args.json:
        args.json.write_text(json.dumps({
            "requests": {p: sum(1 for r in records if r[0] == p) for p in protocols},
            "failed": {p: sum(1 for r in records if r[0] == p and not r[1]) for p in protocols},
            "burst": {"count": args.burst, "shape": burst_shape, "answers": dict(load.burst_answers),
                      "case_slots": 2, "max_waiting": 4, "most_at_once": case_peak},
            "rss_peak_mb": load.rss_peak, "backoffs": dict(load.backoffs),
            "grpc_versions": {str(v): n for v, n in versions.items()},
            "malformed_answers": dict(load.bad_answers), "swaps": [what for _, what in swaps],
            "final_states": {str(v): s for v, s in states.items()},
            "states_seen": {str(v): seen for v, seen in load.states_seen.items()},
            "latency_ms": latency_ms, "seconds": args.seconds, "clients": args.clients, "window": args.window,
            "rss_mb": [rss_start, rss_end], **machine()}, indent=2))
    unexpected = set(load.burst_answers) - {"OK", "RESOURCE_EXHAUSTED"}
    return 1 if failed or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
