"""Evaluating 2-D slice models: per-slice CSV, pooled and per-image summaries, seed 002's report."""

from __future__ import annotations

from pathlib import Path

from kerasbrain.data.errors import keep_readable
from kerasbrain.data.slices import load_slices
from kerasbrain.files import write_csv, write_json, write_text
from kerasbrain.inference.predict_slices import predict_slice_probabilities
from kerasbrain.metrics.binary import SCORES, binary_scores, classification_report, dataset_scores


def evaluate_slices(model, slices, out_dir, enhance: bool = False, threshold: float = 0.5, progress=print) -> dict:
    """Scores over `slices`: per-image CSV, pooled and per-image summary, pixel-wise classification report.

    Unreadable slices are reported and left out (`failed`, also in summary.json)."""
    out_dir = Path(out_dir)
    slices, failed = keep_readable(slices, lambda s: load_slices([s]), lambda s: f"{s.patient}/{s.image.name}",
                                   progress)
    if not slices:
        raise ValueError("none of the slices could be read" + (f"; first: {failed[0]['error']}" if failed else ""))
    images, masks = load_slices(slices, enhance)
    probs = predict_slice_probabilities(model, images)
    preds, truths = probs >= threshold, masks[..., 0] > 0.5
    rows = [{"patient": s.patient, "slice": s.index, **binary_scores(p, t)} for s, p, t in zip(slices, preds, truths)]
    summary = dataset_scores(preds, truths)
    report = classification_report(preds, truths)
    table = ["| score | all pixels | mean over images |", "|---|---|---|"]
    table += [f"| {k} | {summary['pixels'][k]:.4f} | {summary['images'][k]:.4f} |" for k in SCORES]
    table = "\n".join(table)
    write_csv(out_dir / "slices.csv", rows)
    write_json(out_dir / "summary.json", {**summary, "failed": failed} if failed else summary)
    write_text(out_dir / "summary.md", table + "\n")
    write_text(out_dir / "classification_report.txt", report)
    progress(f"evaluated {len(slices)} slices of {len({s.patient for s in slices})} patients")
    return {"rows": rows, "summary": summary, "table": table, "report": report, "out_dir": out_dir,
            "failed": failed}
