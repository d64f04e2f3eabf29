"""Input-pipeline throughput: augmented 4 x 128^3 patches per second from cached BraTS-size cases.

    python bench/input_pipeline.py [--patches 40] [--batch 2] [--no-augment] [--pipeline tf.data|pydataset]
                                   [--workers N]

Compare with bench/train_step.py: the pipeline must deliver patches faster than a step consumes them.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from common import FitBatches, add_json_option, peak_rss_gb, record  # noqa: E402

from kerasbrain.data.augment import AugmentConfig  # noqa: E402
from kerasbrain.data.layouts import discover  # noqa: E402
from kerasbrain.data.phantom import write_dataset  # noqa: E402
from kerasbrain.data.patch_batches import patch_stream  # noqa: E402
from kerasbrain.data.pipeline import PatchSampler  # noqa: E402
from kerasbrain.data.preprocess import cached_preprocess  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--pipeline", choices=("tf.data", "pydataset"), default="tf.data",
                        help="tf.data's parallel map, or Keras's PyDataset in threads (data/patch_batches.py)")
    parser.add_argument("--workers", type=int, default=0, help="0: tf.data's AUTOTUNE, one thread per core")
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "msd", "msd", cases=args.cases, shape=(240, 240, 155), seed=2)
        folders = [cached_preprocess(c, Path(tmp) / "cache") for c in discover(data).cases]
        sampler = PatchSampler(folders, (args.patch,) * 3, 0.33, None if args.no_augment else AugmentConfig(), seed=0)
        stream = patch_stream(sampler, args.batch, args.pipeline, workers=args.workers)
        it = _batches(stream)
        next(it)  # warm-up: opens the memory maps, starts the workers
        start = time.perf_counter()
        n = 0
        while n < args.patches:
            next(it)
            n += args.batch
        elapsed = time.perf_counter() - start
        print(f"input pipeline ({args.pipeline}, augment={not args.no_augment}): {n / elapsed:.2f} patches/s "
              f"({elapsed / n:.3f} s/patch, {os.cpu_count()} CPUs)")
        print(f"peak memory: {peak_rss_gb():.2f} GB")
        record(args.json, "input_pipeline", pipeline=args.pipeline, workers=args.workers, augment=not args.no_augment,
               patch=args.patch, batch=args.batch,
               patches=n, patches_per_second=n / elapsed, peak_gb=peak_rss_gb())



def _batches(stream):
    """Batches as `fit` draws them: tf.data's iterator, or the PyDataset through Keras's adapter."""
    return iter(stream) if hasattr(stream, "as_numpy_iterator") else FitBatches(stream)

if __name__ == "__main__":
    main()
