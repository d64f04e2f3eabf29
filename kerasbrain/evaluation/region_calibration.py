"""Calibrated region probabilities for the 3-D segmenter: one temperature per region (WT, TC, ET).

A segmenter's sigmoid probabilities are often overconfident (nnU-Net's: MIC-DKFZ/nnUNet#2763). For
each region r a temperature T_r divides the logits, p' = sigmoid(logit(p) / T_r), chosen to minimise
the binary negative log-likelihood of the truth over validation voxels inside the head (a bounded
search on log T). Because logit(0.5) = 0, a temperature never moves the 0.5 threshold: the label map
is unchanged; probabilities, entropy and uncertainty become honest. The temperatures are folded into
the network's `logits` layer (kernel and bias of channel r divided by T_r), so `calibrated.keras`
is an ordinary model that predict, evaluate, export and serving take as it is.

Voxel-level calibration error (ECE, 15 equal-width bins of the probability: the voxel-weighted gap
between the mean probability and the observed frequency of the region in each bin), MCE, Brier and
NLL are reported per region before and after, with a reliability diagram per region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REGIONS = ("WT", "TC", "ET")


def scale_probabilities(p: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T)."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return 1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))


def binary_calibration_errors(p: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """{"ece", "mce", "brier", "nll", "n"} of probabilities `p` against binary truth `y` (flat arrays)."""
    p = np.clip(np.asarray(p, np.float64).ravel(), 1e-7, 1 - 1e-7)
    y = np.asarray(y, np.float64).ravel()
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, y, bins) - np.bincount(which, p, bins)) / np.maximum(count, 1)
    return {"ece": float((gap * count).sum() / len(p)), "mce": float(gap[count > 0].max()),
            "brier": float(np.mean((p - y) ** 2)), "nll": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
            "n": int(len(p))}


def fit_region_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the binary NLL of `y` under sigmoid(logit(p) / T)."""
    from scipy.optimize import minimize_scalar

    p = np.clip(np.asarray(p, np.float64).ravel(), 1e-7, 1 - 1e-7)
    y = np.asarray(y, np.float64).ravel()
    logit = np.log(p / (1 - p))

    def nll(log_t):
        z = logit / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - y * z))  # -log sigmoid(z) for y=1, -log(1-sigmoid) for y=0

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def fold_region_temperatures(model, temperatures) -> None:
    """Divide the `logits` layer's kernel and bias of each output channel by its temperature (in place)."""
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    t = np.asarray(temperatures, kernel.dtype)
    if t.shape != bias.shape or (t <= 0).any():
        raise ValueError(f"need {bias.shape[0]} positive temperatures. Received: {list(temperatures)}")
    layer.set_weights([kernel / t, bias / t])


def sample_voxels(probabilities, truth_regions, head, per_case: int, seed: int):
    """Up to `per_case` head voxels of one case: (probabilities (n, 3), truth (n, 3))."""
    index = np.flatnonzero(head.ravel())
    if len(index) > per_case:
        index = np.sort(np.random.default_rng(seed).choice(index, per_case, replace=False))
    return probabilities.reshape(-1, 3)[index], truth_regions.reshape(-1, 3)[index]


def save_region_reliability(path, before: np.ndarray, after: np.ndarray, truth: np.ndarray, temperatures,
                            bins: int = 15) -> Path:
    """Observed frequency against mean probability per bin, per region, before and after scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharey=True)
    for r, (ax, region) in enumerate(zip(axes, REGIONS)):
        for p, style, name in ((before[:, r], "-o", "before"), (after[:, r], "-s", f"after (T = {temperatures[r]:.2f})")):
            which = np.clip((p * bins).astype(int), 0, bins - 1)
            count = np.bincount(which, minlength=bins)
            keep = count > 0
            mean_p = np.bincount(which, p, bins)[keep] / count[keep]
            freq = np.bincount(which, truth[:, r].astype(float), bins)[keep] / count[keep]
            ece = binary_calibration_errors(p, truth[:, r], bins)["ece"]
            ax.plot(mean_p, freq, style, markersize=4, label=f"{name}, ECE {ece:.4f}")
        ax.plot([0, 1], [0, 1], "k:", linewidth=1)
        ax.set_title(region)
        ax.set_xlabel("mean predicted probability")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("observed frequency")
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def calibrate_volume_run(model, model_path, data_dir, session, progress=print, per_case: int = 200_000,
                         seed: int = 0) -> dict:
    """Fit a temperature per region on the run's validation cases; save calibrated.keras and the report.

    `session` is the family's `VolumeSession` for `model` (window predictor, inference settings). The
    errors are measured on the same validation voxels the temperatures were fitted on (a held-out
    check: `evaluate --uncertainty` with `calibrated.keras`). Writes `<run>/calibrated.keras` and
    `<run>/calibration/{calibration.json, calibration.md, reliability.png}`.
    """
    from dataclasses import replace

    from kerasbrain.data.io import labelled_cases
    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.data.preprocess import preprocess_case
    from kerasbrain.files import atomic_write, write_json, write_text
    from kerasbrain.inference.predict_volume import predict_probabilities
    from kerasbrain.runs import CALIBRATED_MODEL, run_dir_of, subset_ids

    run_dir = run_dir_of(model_path)
    wanted = set(subset_ids(run_dir, "validation") or [])
    cases = [c for c in labelled_cases(data_dir, "volume") if c[0] in wanted]
    if not cases:
        raise ValueError(f"{data_dir}: none of the run's validation cases are here; calibration fits on them")
    cfg = replace(session.config, min_component_ml=0.0, min_enhancing_ml=0.0)
    probabilities, truth = [], []
    for i, (name, load, _) in enumerate(cases):
        case = load()
        pre = preprocess_case(case, session.spacing, normalize=False)
        p = predict_probabilities(pre, session.predict, session.channels, cfg)
        head = np.any(case.image != 0, axis=-1)
        sample = sample_voxels(p, labels_to_regions(case.labels).astype(bool), head, per_case, seed + i)
        probabilities.append(sample[0])
        truth.append(sample[1])
        progress(f"[{i + 1}/{len(cases)}] {name}: {len(sample[0]):,} head voxels")
    p, y = np.concatenate(probabilities), np.concatenate(truth)
    temperatures = [fit_region_temperature(p[:, r], y[:, r]) for r in range(3)]
    after = np.stack([scale_probabilities(p[:, r], temperatures[r]) for r in range(3)], axis=1)
    report = {"temperatures": dict(zip(REGIONS, temperatures)), "cases": [c[0] for c in cases],
              "voxels": int(len(p)), "fitted_on": "validation voxels inside the head (the same the errors use)",
              "before": {r: binary_calibration_errors(p[:, i], y[:, i]) for i, r in enumerate(REGIONS)},
              "after": {r: binary_calibration_errors(after[:, i], y[:, i]) for i, r in enumerate(REGIONS)}}
    fold_region_temperatures(model, temperatures)
    out = run_dir / "calibration"
    table = ["| region | T | ECE before | ECE after | Brier before | Brier after | NLL before | NLL after |",
             "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r} | {report['temperatures'][r]:.3f} | {report['before'][r]['ece']:.4f} | "
              f"{report['after'][r]['ece']:.4f} | {report['before'][r]['brier']:.4f} | {report['after'][r]['brier']:.4f} | "
              f"{report['before'][r]['nll']:.4f} | {report['after'][r]['nll']:.4f} |" for r in REGIONS]
    table = "\n".join(table)
    files = [atomic_write(run_dir / CALIBRATED_MODEL, lambda tmp: model.save(tmp)),
             write_json(out / "calibration.json", report), write_text(out / "calibration.md", table + "\n"),
             save_region_reliability(out / "reliability.png", p, after, y, temperatures)]
    progress("temperatures " + ", ".join(f"{r} {t:.3f}" for r, t in zip(REGIONS, temperatures))
             + f" fitted on {len(p):,} validation voxels of {len(cases)} cases")
    return {**report, "table": table, "files": files}
