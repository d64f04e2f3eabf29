"""Evaluating 2-D slice models: per-slice and per-patient CSVs, pooled, per-image and per-patient
summaries, seed 002's report, and how well the model's own confidence finds its worst slices and patients.

A patient's scores count every pixel of their slices together (a patient's volume, the unit LGG
splits and reports by); each slice and each patient also gets the Dice its own probabilities
predict (`metrics/case_confidence.expected_dice`), and the summary measures how well that estimate
ranks them (`evaluation/failure_detection.py`), so a reader knows which patients to check first.
What that estimate cannot see, a missed tumour end, is looked for beside it: each slice with nothing
predicted next to a predicted tumour is marked (`inference/slice_review.py`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from kerasbrain.data.errors import keep_readable
from kerasbrain.data.slices import load_slices
from kerasbrain.evaluation.failure_detection import failure_detection, failure_detection_advice
from kerasbrain.files import write_csv, write_json, write_text
from kerasbrain.inference.predict_slices import predict_slice_probabilities
from kerasbrain.inference.slice_review import next_to_predicted_tumour
from kerasbrain.metrics.binary import SCORES, binary_scores, classification_report, dataset_scores, mean_scores
from kerasbrain.metrics.case_confidence import expected_dice


def patient_rows(slices, probs, preds, truths) -> list[dict]:
    """One row per patient (first-seen order): scores over all their slices' pixels together, the
    slice counts, and the expected Dice of their predicted mask under their probabilities."""
    by_patient = defaultdict(list)
    for i, s in enumerate(slices):
        by_patient[s.patient].append(i)
    rows = []
    for patient, index in by_patient.items():
        rows.append({"patient": patient, "slices": len(index), "tumour_slices": int(truths[index].any((1, 2)).sum()),
                     **binary_scores(preds[index], truths[index]),
                     "expected_dice": round(expected_dice(probs[index], preds[index]), 4)})
    return rows


def evaluate_slices(model, slices, out_dir, enhance: bool = False, threshold: float = 0.5, progress=print) -> dict:
    """Scores over `slices`: per-slice and per-patient CSVs, a pooled, per-image and per-patient summary,
    the pixel-wise classification report, and the confidence's failure detection.

    Unreadable slices are reported and left out (`failed`, also in summary.json)."""
    out_dir = Path(out_dir)
    slices, failed = keep_readable(slices, lambda s: load_slices([s]), lambda s: f"{s.patient}/{s.image.name}",
                                   progress)
    if not slices:
        raise ValueError("none of the slices could be read" + (f"; first: {failed[0]['error']}" if failed else ""))
    images, masks = load_slices(slices, enhance)
    probs = predict_slice_probabilities(model, images)
    preds, truths = probs >= threshold, masks[..., 0] > 0.5
    rows = [{"patient": s.patient, "slice": s.index, **binary_scores(p, t),
             "expected_dice": round(expected_dice(q, p), 4)} for s, q, p, t in zip(slices, probs, preds, truths)]
    review = next_to_predicted_tumour({(s.patient, s.index): bool(p.any()) for s, p in zip(slices, preds)})
    for s, row in zip(slices, rows):
        row["next_to_predicted_tumour"] = (s.patient, s.index) in review
    patients = patient_rows(slices, probs, preds, truths)
    summary = {**dataset_scores(preds, truths), "patients": mean_scores(patients)}
    summary["next_to_predicted_tumour"] = {"slices": len(review), "hold_tumour": int(sum(
        t.any() for s, t in zip(slices, truths) if (s.patient, s.index) in review))}
    summary["failure_detection"] = {"expected_dice": {
        unit: failure_detection([r["expected_dice"] for r in table], [r["dice"] for r in table])
        for unit, table in (("slices", rows), ("patients", patients))}}
    report = classification_report(preds, truths)
    table = ["| score | all pixels | mean over images | mean over patients |", "|---|---|---|---|"]
    table += [f"| {k} | {summary['pixels'][k]:.4f} | {summary['images'][k]:.4f} | {summary['patients'][k]:.4f} |"
              for k in SCORES]
    table = "\n".join(table)
    advice = failure_detection_advice(summary["failure_detection"], "slices.csv or patients.csv")
    near = summary["next_to_predicted_tumour"]
    advice += (f"\nSlices with nothing predicted next to a predicted tumour (`next_to_predicted_tumour`; a missed "
               f"tumour end is likeliest there, and no confidence sees it): {near['slices']}, "
               f"{near['hold_tumour']} of them hold tumour.")
    write_csv(out_dir / "slices.csv", rows)
    write_csv(out_dir / "patients.csv", patients)
    write_json(out_dir / "summary.json", {**summary, "failed": failed} if failed else summary)
    write_text(out_dir / "summary.md", table + "\n\n" + advice + "\n")
    write_text(out_dir / "classification_report.txt", report)
    progress(f"evaluated {len(slices)} slices of {len(patients)} patients")
    return {"rows": rows, "patients": patients, "summary": summary, "table": table + "\n\n" + advice,
            "report": report, "out_dir": out_dir, "failed": failed}
