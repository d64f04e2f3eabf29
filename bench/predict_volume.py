"""Whole-volume prediction: seconds and peak memory to segment one 4 x 240 x 240 x 155 case.

    python bench/predict_volume.py [--window 128] [--overlap 0.5] [--repeats 3] [--compile-mode auto] [--full-grid]
                                   [--precision auto|fp32|bf16]

Writes a phantom case of BraTS size, then times the complete `kerasbrain predict` path (read NIfTI,
reorient, crop to the head, z-score, sliding window with Gaussian blending, write the label map)
with the default 5.7 M-parameter U-Net. Weights are random: speed does not depend on them.
`--full-grid` instead predicts the whole uncropped 240 x 240 x 155 array (18 windows at 128^3,
overlap 0.5), the same windows as MONAI's `sliding_window_inference` on the full volume.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
from common import add_json_option, add_precision_option, peak_rss_gb, record, report, timed  # noqa: E402

from kerasbrain.data.layouts import discover, load_case  # noqa: E402
from kerasbrain.data.preprocess import Preprocessed  # noqa: E402
from kerasbrain.data.phantom import write_dataset  # noqa: E402
from kerasbrain.inference.predict_volume import InferenceConfig, predict_files, predict_probabilities  # noqa: E402
from kerasbrain.intensity import head_statistics  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.runtime import precision_policy, predictor  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--compile-mode", default="auto", choices=["auto", "graph", "xla"])
    add_precision_option(parser, "auto")
    parser.add_argument("--full-grid", action="store_true", help="No head crop: every window of the full volume.")
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(Path(tmp) / "msd", "msd", cases=1, shape=(240, 240, 155), seed=1)
        case = discover(data).cases[0]
        with precision_policy(args.precision):
            model = UNet()
        predict = predictor(model, args.compile_mode)
        cfg = InferenceConfig(window=(args.window,) * 3, overlap=args.overlap, batch_size=args.batch_size,
                              mirror=args.mirror)
        windows = []
        out = Path(tmp) / "pred.nii.gz"
        if args.full_grid:
            image = load_case(case).image
            mean, std = head_statistics(image)
            whole = Preprocessed(case.case_id, image, None, tuple((0, s) for s in image.shape[:3]), image.shape[:3],
                                 mean=mean, std=std)

            def run():
                return predict_probabilities(whole, predict, 3, cfg, progress=lambda d, n: windows.append(n))
        else:
            def run():
                return predict_files(case, predict, 3, cfg, out, progress=lambda d, n: windows.append(n))
        print(f"backend={keras.backend.backend()} jit_compile={model.jit_compile} params={model.count_params():,} "
              f"window={cfg.window} overlap={cfg.overlap} mirror={cfg.mirror} policy={model.dtype_policy.name}")
        times = timed(run, args.repeats, warmup=1)
        print(f"windows per volume: {windows[-1]}")
        report("predict 4x240x240x155", times, 1, "volumes")
        print(f"peak memory: {peak_rss_gb():.2f} GB")
        record(args.json, "predict_volume", jit_compile=bool(model.jit_compile), window=args.window,
               overlap=args.overlap, batch_size=args.batch_size, mirror=args.mirror, full_grid=args.full_grid,
               precision=model.dtype_policy.name,
               windows=windows[-1], seconds=statistics.median(times), repeats=len(times), peak_gb=peak_rss_gb())


if __name__ == "__main__":
    main()
