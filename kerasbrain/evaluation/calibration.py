"""Confidence calibration of the class head: ECE, MCE, Brier score and temperature scaling.

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T fitted on validation
images to minimise the negative log-likelihood; it never changes the predicted class, only how
sure the model says it is. The class head is a Dense layer followed by softmax, so dividing its
kernel and bias by T is exactly softmax(logits / T): `fold_temperature` writes T into the weights,
and the calibrated `.keras` model exports and serves with no new layer. Its
`calibration_temperature` attribute (saved in the model's config) records the T it carries.

ECE / MCE: predictions are binned by confidence (their top probability) into equal-width bins;
ECE is the sample-weighted mean |accuracy - confidence| over bins, MCE the largest. Brier: mean
over images of sum_k (p_k - y_k)^2 (0 is perfect, 2 the worst).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.runs import CALIBRATED_MODEL


def calibration_errors(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """{"ece", "mce", "brier", "nll", "accuracy"} of class probabilities (N, K) against labels (N,)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    y = np.asarray(labels)
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    correct = (predicted == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece, mce = 0.0, 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += inside.mean() * gap
            mce = max(mce, gap)
    one_hot = np.eye(p.shape[1])[y]
    return {"ece": float(ece), "mce": float(mce), "brier": float(np.mean(np.sum((p - one_hot) ** 2, axis=1))),
            "nll": float(-np.mean(np.log(p[np.arange(len(y)), y]))), "accuracy": float(correct.mean()),
            "n": int(len(y))}


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities a head with logits divided by T would give."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the negative log-likelihood of `labels` (bounded 1-D search on log T)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels)

    def nll(log_t):
        q = apply_temperature(probabilities, float(np.exp(log_t)))
        return -np.mean(np.log(np.clip(q[np.arange(len(y)), y], 1e-12, 1.0)))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                             options={"xatol": 1e-5})
    return float(np.exp(result.x))


def fold_temperature(model, temperature: float):
    """Divide the class layer's kernel and bias by T (in place) and record T on the model."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive. Received: {temperature}")
    layer = model.get_layer("class")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])
    model.calibration_temperature = float(temperature) * float(getattr(model, "calibration_temperature", None) or 1.0)
    return model


def save_reliability_diagram(path, probabilities_before, probabilities_after, labels, temperature: float,
                             bins: int = 15) -> Path:
    """Accuracy against confidence per bin, before and after temperature scaling, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for ax, p, title in ((axes[0], probabilities_before, "before"), (axes[1], probabilities_after,
                                                                      f"after (T = {temperature:.3f})")):
        confidence, correct = p.max(axis=1), (p.argmax(axis=1) == labels)
        which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
        accuracy = [correct[which == b].mean() if (which == b).any() else 0.0 for b in range(bins)]
        counts = np.bincount(which, minlength=bins)
        ax.bar(centres, accuracy, width=1 / bins, edgecolor="k", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
        scores = calibration_errors(p, labels, bins)
        ax.set(title=f"{title}: ECE {scores['ece']:.3f}, Brier {scores['brier']:.3f}", xlabel="confidence",
               xlim=(0, 1), ylim=(0, 1))
        twin = ax.twinx()  # how many images each bin holds (empty bins left out)
        twin.plot(centres[counts > 0], counts[counts > 0], "k.", label="images per bin")
        twin.set_ylim(0, counts.max() * 1.1)
        twin.set_ylabel("images per bin (dots)", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def calibrate_run(model, size: int, model_path, data_dir, progress=print) -> dict:
    """Fit T on the run's validation images, score its test images before and after, save the calibrated model.

    `model` is the run's model loaded at its image `size` (the family loads it: `load_with_size`).

    Writes `<run>/calibrated.keras` and `<run>/calibration/{calibration.json, calibration.md,
    reliability.png}`; returns {"temperature", "validation", "test": {"before", "after"}, "files"}.
    """
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.files import atomic_write, write_json, write_text
    from kerasbrain.runs import run_dir_of, subset_ids

    if "class" not in getattr(model, "tasks", ()):
        raise ValueError(f"{model_path}: the model has no class head to calibrate")
    run_dir = run_dir_of(model_path)
    by_id = {s.id: s for s in discover_tumour_images(data_dir)}
    subsets = {}
    for subset in ("validation", "test"):
        ids = subset_ids(run_dir, subset)
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"{data_dir}: {len(missing)} {subset} image(s) of the run are missing, e.g. {missing[0]}")
        images, labels = load_samples([by_id[i] for i in ids], size)[:2]
        keep = labels >= 0
        subsets[subset] = (predict_images(model, images[keep])["class"], labels[keep])
    temperature = fit_temperature(*subsets["validation"])
    report = {"temperature": temperature,
              "validation": {"before": calibration_errors(*subsets["validation"]),
                             "after": calibration_errors(apply_temperature(subsets["validation"][0], temperature),
                                                         subsets["validation"][1])}}
    test_p, test_y = subsets["test"]
    test_after = apply_temperature(test_p, temperature)
    report["test"] = {"before": calibration_errors(test_p, test_y), "after": calibration_errors(test_after, test_y)}
    fold_temperature(model, temperature)
    out = run_dir / "calibration"
    files = [atomic_write(run_dir / CALIBRATED_MODEL, lambda tmp: model.save(tmp)),
             write_json(out / "calibration.json", report),
             write_text(out / "calibration.md", calibration_table(report) + "\n"),
             save_reliability_diagram(out / "reliability.png", test_p, test_after, test_y, temperature)]
    progress(f"temperature {temperature:.4f} fitted on {report['validation']['before']['n']} validation images")
    return {**report, "files": files, "table": calibration_table(report)}


def calibration_table(report: dict) -> str:
    lines = [f"Temperature T = {report['temperature']:.4f} (fitted on validation images)", "",
             "| Images | | Accuracy | ECE | MCE | Brier | NLL |", "|---|---|---:|---:|---:|---:|---:|"]
    for subset in ("validation", "test"):
        for when in ("before", "after"):
            s = report[subset][when]
            lines.append(f"| {subset} (n = {s['n']}) | {when} | {s['accuracy']:.4f} | {s['ece']:.4f} | "
                         f"{s['mce']:.4f} | {s['brier']:.4f} | {s['nll']:.4f} |")
    return "\n".join(lines)
