"""One predict pipeline for a case and for a folder of cases, whatever the family and the input format.

`predict_case` runs a family's `predict` on one request; `predict_folder` lists a folder's cases
through the input-format registry (each case with its format's result name), predicts them with
the model loaded once (`ModelFamily.predict_many`), goes on past a case that fails, and writes
`predictions.csv` (with each case's confidence and input warnings where the family reports them, to
sort for review). The CLI and the app call these; families never loop over folders themselves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasbrain.files import check_can_create, write_csv

PREDICTIONS_TABLE = "predictions.csv"


def _check(family, request, folder: bool = False) -> None:
    """Refuse in one line what the family does not declare (a served slice model, a folder ...)."""
    family.require("predict_server" if request.server else "predict", request.model)
    if folder:
        family.require("predict_folder", request.model)
    if request.uncertainty:
        family.require("uncertainty", request.model)
    check_can_create(request.out)  # a folder's results go under it: the same check for --input DIR


def predict_case(family, request, progress=print):
    """The `Prediction` of one request (the family checks the input before the model is asked)."""
    _check(family, request)
    return family.predict(request, progress=progress)


def predict_folder(family, request, folder: Path, out: Path, progress=print) -> dict:
    """Predict every case in `folder` into `out`; one progress line per case.

    Returns {"rows": one dict per case (case, status, files, error), "failed": how many failed,
    "table": the CSV written}.
    """
    folder, out = Path(folder), Path(out)
    _check(family, request, folder=True)
    cases = family.list_inputs(folder)
    if not cases:
        raise ValueError(f"{folder}: no cases found for a {family.name} model")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: not a folder (with --input a folder, --out is a folder)")
    requests = [dataclasses.replace(request, inputs=inputs, out=out / output, overlay=None)
                for _, inputs, output in cases]
    names = {id(r): name for r, (name, _, _) in zip(requests, cases)}
    rows, failed = [], 0
    for i, (req, result) in enumerate(family.predict_many(requests, progress=lambda message: None), 1):
        name = names[id(req)]
        if isinstance(result, Exception):
            failed += 1
            progress(f"[{i}/{len(requests)}] {name}: FAILED: {result}")
            rows.append({"case": name, "status": "failed", "files": "", "error": str(result)})
        else:
            progress(f"[{i}/{len(requests)}] {name}: " + "; ".join(result.lines))
            rows.append({"case": name, "status": "ok", "files": " ".join(str(f) for f in result.files), "error": "",
                         **review_columns(getattr(result, "report", None))})
    columns = list(dict.fromkeys(key for row in rows for key in row))  # a failed first case has no confidence
    return {"rows": rows, "failed": failed, "table": write_csv(out / PREDICTIONS_TABLE, rows, columns)}


def read_first(rows: list[dict], count: int = 3) -> list[str]:
    """The `count` least confident cases of a folder's rows, by their lowest expected Dice over the
    regions, each as "case (region estimate)"; [] where no case has a confidence."""
    scored = []
    for row in rows:
        estimates = {k.removeprefix("expected_dice_"): v for k, v in row.items() if k.startswith("expected_dice_")}
        if estimates:
            region = min(estimates, key=estimates.get)
            scored.append((estimates[region], f"{row['case']} ({region} {estimates[region]:.2f})"))
    return [text for _, text in sorted(scored)[:count]]


def review_columns(report: dict | None) -> dict:
    """A case report's confidence as `predictions.csv` columns (`expected_dice_WT`, ...), so a folder's
    cases can be sorted for review, least confident first, its `input_warnings` (blank or copied
    sequences) in one column and a slice's `tumour_pixels`; {} where the family reports none."""
    report = report or {}
    columns = {f"{kind}_{region}": value for kind, regions in report.get("confidence", {}).items()
               if isinstance(regions, dict) for region, value in regions.items()}
    if "input_warnings" in report:
        columns["input_warnings"] = "; ".join(report["input_warnings"])
    if "tumour_pixels" in report:  # a slice's: `inference/slice_review.py` reads it
        columns["tumour_pixels"] = report["tumour_pixels"]
    return columns
