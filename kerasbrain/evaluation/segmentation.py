"""Evaluating a segmentation model on every labelled case of a dataset: per-case CSV and a summary.

Each case is predicted on its full volume with the sliding window (as at deployment, not on
patches) and scored per region (WT/TC/ET: Dice, sensitivity, specificity, HD95) and per label
(seed 003's sensitivity/specificity for edema, necrotic/non-enhancing core, enhancing tumour).
Each case's blank or copied sequences are named (`data/channel_check.py`, `input_warnings`). Each
case also gets its case-level confidence (`metrics/case_confidence.py`: the Dice its own
probabilities predict, and with uncertainty its members' agreement), and the summary says how well
that confidence finds the worst cases (`evaluation/failure_detection.py`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from kerasbrain.data.channel_check import channel_warnings
from kerasbrain.data.io import labelled_cases
from kerasbrain.data.labels import REGIONS, labels_to_regions
from kerasbrain.files import write_csv, write_json, write_text
from kerasbrain.evaluation.failure_detection import failure_detection_advice, failure_detection_by_region
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.postprocess import choose_postprocessing, island_floor_ml, postprocess, postprocessing_scores
from kerasbrain.inference.predict_volume import predict_case, predict_case_uncertain
from kerasbrain.metrics.case_confidence import case_confidence
from kerasbrain.metrics.lesion_wise import LesionSettings, lesion_wise_region_scores
from kerasbrain.metrics.numpy_metrics import region_scores


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """mean / std / median / n over cases for each score, ignoring NaN (undefined) values, counted;
    text columns (`input_warnings`) are not scores and are left out."""
    keys = [k for k in rows[0] if k != "case_id"] if rows else []
    summary = {}
    for key in keys:
        try:
            values = np.array([r[key] for r in rows], dtype=float)
        except ValueError:  # text, such as a warning
            continue
        finite = values[~np.isnan(values)]
        summary[key] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
            "median": float(np.median(finite)) if finite.size else math.nan,
            "n": int(finite.size),
            "undefined": int(values.size - finite.size),
        }
    return summary


def format_table(summary: dict) -> str:
    """Markdown table: rows = score, columns = mean, std, median, n."""
    lines = ["| score | mean | std | median | n |", "|---|---|---|---|---|"]
    for key, s in summary.items():
        lines.append(f"| {key} | {s['mean']:.4f} | {s['std']:.4f} | {s['median']:.4f} | {s['n']} |")
    return "\n".join(lines)


#: The columns of lesions.csv: one row per lesion (matched, missed, below threshold) and false positive.
LESION_COLUMNS = ("case_id", "region", "lesion", "volume_mm3", "predicted_components", "dice", "hd95", "status",
                  "mean_probability")
#: What post-processing can be chosen for: the whole-region ("legacy") Dice or BraTS 2023's lesion-wise Dice.
POSTPROCESS_TARGETS = ("legacy", "lesion")


def evaluate_dataset(data_dir, predict, out_channels: int, out_dir, cfg: InferenceConfig, case_ids=None,
                     save_predictions: bool = False, target_spacing=None, progress=print,
                     lesion: LesionSettings = LesionSettings(), postprocess_target: str = "legacy",
                     uncertainty: bool = False, input_options: dict | None = None) -> dict:
    """Predict and score each labelled case; writes cases.csv, lesions.csv, summary.json and summary.md.

    Each case gets the whole-region ("legacy") scores and BraTS 2023's lesion-wise Dice and HD95
    under `lesion` (one row per lesion and false positive in lesions.csv); the post-processing
    thresholds are judged on the lesion-wise or the legacy Dice (`postprocess_target`).

    With `uncertainty`, mirror TTA is on and the members' uncertainty is scored as QU-BraTS does
    (`metrics/uncertainty_filtering.py`) beside a control that shuffles it within the head:
    `qu_*` columns per case, the mean curves in uncertainty.json and uncertainty.png.

    The cases come from any registered input format (`kerasbrain.data.io.labelled_cases`: MSD and
    BraTS datasets, or a plug-in format's labelled cases). A case that cannot be read is reported
    and left out (`failed` in the result and in summary.json), so one broken file does not lose
    the others; the CLI then exits non-zero. A case read without labels is skipped with a note.
    """
    if postprocess_target not in POSTPROCESS_TARGETS:
        raise ValueError(f"postprocess_target must be one of {', '.join(POSTPROCESS_TARGETS)}. "
                         f"Received: {postprocess_target!r}")
    out_dir = Path(out_dir)
    cases = [c for c in labelled_cases(data_dir, "volume", input_options) if case_ids is None or c[0] in set(case_ids)]
    if not cases:
        raise ValueError(f"{data_dir}: no labelled cases to evaluate")
    rows, failed, tuning, lesion_rows, curves = [], [], [], [], []
    raw_cfg = replace(cfg, min_component_ml=0.0, min_enhancing_ml=0.0)
    for i, (name, load, fmt) in enumerate(cases, 1):
        try:
            case = load()
        except ValueError as exc:  # DataError / LabelError: this case only
            failed.append({"case_id": name, "error": str(exc)})
            progress(f"[{i}/{len(cases)}] {name}: FAILED: {exc}")
            continue
        if case.labels is None:
            progress(f"[{i}/{len(cases)}] {name}: skipped, no labels")
            continue
        if uncertainty:
            raw, members = predict_case_uncertain(case, predict, out_channels, raw_cfg, target_spacing)
            probabilities = members.probabilities
        else:
            raw, probabilities = predict_case(case, predict, out_channels, raw_cfg, target_spacing)
        labels = postprocess(raw, case.grid.spacing, cfg.min_component_ml, cfg.min_enhancing_ml)  # raw: specks gone
        spacing = case.grid.spacing
        target = None if postprocess_target == "legacy" else lesion_dice_score(spacing, lesion)
        tuning.append(postprocessing_scores(raw, case.labels, spacing, score=target))
        scores = region_scores(labels, case.labels, spacing)
        lesion_scores, lesions = lesion_wise_region_scores(labels, case.labels, spacing, lesion, probabilities)
        qu = {}
        if uncertainty:
            qu, case_curves = uncertainty_scores(labels, case.labels, members, case.image)
            curves.append(case_curves)
        confidence = case_confidence(probabilities, labels_to_regions(labels).astype(bool),
                                     members if uncertainty else None)
        warnings = channel_warnings(case.image)
        rows.append({"case_id": case.case_id, **scores, **seed003_soft_dice(probabilities, case.labels),
                     **lesion_scores, **qu, **confidence, "input_warnings": "; ".join(warnings)})
        lesion_rows += [{"case_id": case.case_id, **row} for row in lesions]
        if save_predictions:
            name = f"{case.case_id}{fmt.output_suffixes[0]}"
            fmt.write(case, labels, out_dir / "predictions" / name, model="evaluate")
        progress(f"[{i}/{len(cases)}] {case.case_id}: " +
                 " ".join(f"dice_{r}={scores[f'dice_{r}']:.3f}" for r in REGIONS) + " | lesion-wise " +
                 " ".join(f"{r}={lesion_scores[f'lesion_dice_{r}']:.3f}" for r in REGIONS)
                 + "".join(f" | WARNING: {w}" for w in warnings))
    if not rows:
        why = f"could be read; first: {failed[0]['error']}" if failed else "has labels"
        raise ValueError(f"{data_dir}: none of the {len(cases)} cases {why}")
    summary = summarise(rows)
    postprocessing = postprocessing_summary(tuning, cfg, rows, postprocess_target, lesion)
    write_csv(out_dir / "cases.csv", rows)
    write_csv(out_dir / "lesions.csv", lesion_rows, fieldnames=LESION_COLUMNS)
    extra = {"postprocessing": postprocessing, "lesion_wise": {"preset": lesion.preset, "dilation": lesion.dilation,
                                                               "min_volume_mm3": lesion.min_volume},
             "failure_detection": case_failure_detection(rows), **({"failed": failed} if failed else {})}
    if uncertainty:
        extra["uncertainty"] = write_uncertainty_curves(curves, out_dir)
    write_json(out_dir / "summary.json", {**summary, **extra})
    table = (format_table(summary) + "\n\n" + postprocessing["advice"] + "\n\n"
             + failure_detection_advice(extra["failure_detection"]))
    write_text(out_dir / "summary.md", table + "\n")
    return {"rows": rows, "summary": summary, "table": table, "out_dir": out_dir, "failed": failed}


def case_failure_detection(rows: list[dict]) -> dict:
    """Per confidence score the cases have (expected Dice; member agreement with uncertainty), how
    well it ranks them by their whole-region Dice, per region."""
    scores = [s for s in ("expected_dice", "agreement") if rows and f"{s}_WT" in rows[0]]
    return {s: failure_detection_by_region(rows, s) for s in scores}


def seed003_soft_dice(probabilities, truth) -> dict:
    """Per region and their mean, seed 003's soft Dice of the whole volume's probabilities (before
    post-processing), so its reported 0.7273 has a column to be compared with."""
    from kerasbrain.metrics.numpy_metrics import soft_dice

    regions = labels_to_regions(truth)
    values = {f"soft_dice_{r}": soft_dice(probabilities[..., i], regions[..., i]) for i, r in enumerate(REGIONS)}
    return {**values, "soft_dice_mean": float(np.mean(list(values.values())))}


def uncertainty_scores(labels, truth, members, image, seed: int = 0) -> tuple[dict, dict]:
    """QU-BraTS columns for one case (per region: its score and three areas, the shuffled control's
    and edge controls' scores, and the voxel-level ECE of the probabilities inside the head) and the
    case's curves; the head is where any modality is non-zero."""
    from kerasbrain.evaluation.region_calibration import binary_calibration_errors
    from kerasbrain.metrics.uncertainty_filtering import edge_uncertainty, filtering_curves, shuffled_within

    head = np.any(np.asarray(image) != 0, axis=-1)
    predicted, true = labels_to_regions(labels).astype(bool), labels_to_regions(truth).astype(bool)
    scale = members.qubrats_scale()
    columns, curves = {}, {}
    for r, region in enumerate(REGIONS):
        real = filtering_curves(true[..., r], predicted[..., r], scale[..., r], head)
        control = filtering_curves(true[..., r], predicted[..., r], shuffled_within(scale[..., r], head, seed), head)
        edge = filtering_curves(true[..., r], predicted[..., r], edge_uncertainty(predicted[..., r]), head)
        columns.update({f"qu_score_{region}": real["score"], f"qu_auc_dice_{region}": real["auc_dice"],
                        f"qu_auc_ftp_{region}": real["auc_ftp"], f"qu_auc_ftn_{region}": real["auc_ftn"],
                        f"qu_score_shuffled_{region}": control["score"], f"qu_score_edge_{region}": edge["score"],
                        f"qu_auc_dice_edge_{region}": edge["auc_dice"],
                        f"ece_{region}": binary_calibration_errors(members.probabilities[..., r][head],
                                                                   true[..., r][head])["ece"]})
        curves[region] = {"uncertainty": real, "shuffled": control, "edge": edge}
    return columns, curves


def write_uncertainty_curves(curves: list[dict], out_dir: Path) -> dict:
    """Mean filtering curves over cases (uncertainty and shuffled control) to uncertainty.json and .png."""
    from kerasbrain.evaluation.figures import save_filtering_curves
    from kerasbrain.metrics.uncertainty_filtering import THRESHOLDS

    mean = {region: {kind: {key: np.mean([c[region][kind][key] for c in curves], axis=0).tolist()
                            for key in ("dice", "ftp", "ftn", "auc_dice", "auc_ftp", "auc_ftn", "score")}
                     for kind in ("uncertainty", "shuffled", "edge")} for region in REGIONS}
    result = {"thresholds": list(THRESHOLDS), "cases": len(curves), "mean": mean,
              "uncertainty": "binary entropy of the members' mean probability x 100 (0 = certain); members: the mirror views (x the networks of an ensemble)",
              "control": "the same values shuffled among the head's voxels",
              "edge": "100 on the predicted border falling to 0 three voxels away (near-the-border control)"}
    write_json(out_dir / "uncertainty.json", result)
    save_filtering_curves(out_dir / "uncertainty.png", result)
    return {"file": "uncertainty.json", **{r: {k: round(mean[r][k]["score"], 4) for k in mean[r]} for r in REGIONS}}


def lesion_dice_score(spacing, settings: LesionSettings):
    """A `postprocessing_scores` score: the lesion-wise Dice per region."""
    def score(labels, truth):
        scores, _ = lesion_wise_region_scores(labels, truth, spacing, settings)
        return tuple(scores[f"lesion_dice_{r}"] for r in REGIONS)

    return score


def postprocessing_summary(tuning: list[dict], cfg: InferenceConfig, rows: list[dict], target: str = "legacy",
                           lesion: LesionSettings | None = None) -> dict:
    """What the cases favour for the two post-processing thresholds, and a line of advice.

    The score is `target`'s: the mean WT/TC/ET whole-region ("legacy") Dice or lesion-wise Dice.
    `mean_dice_by_min_component_ml` is at the best enhancing threshold and
    `mean_dice_by_min_enhancing_ml` at the best component threshold; `mean_dice_off` is the mean
    with both rules off, `mean_dice_in_use` with the config's own thresholds (all after the fixed
    speck rule, `min_part_ml`).
    """
    (component, enhancing), means = choose_postprocessing(tuning, island_floor_ml(target, lesion))
    in_use = (cfg.min_component_ml, cfg.min_enhancing_ml)
    off = means[0.0, 0.0]
    column = "dice_{}" if target == "legacy" else "lesion_dice_{}"
    used = float(np.mean([[row[column.format(r)] for r in REGIONS] for row in rows]))
    what = "Dice" if target == "legacy" else "lesion-wise Dice"
    return {
        "target": target,
        "min_component_ml_in_use": cfg.min_component_ml, "min_enhancing_ml_in_use": cfg.min_enhancing_ml,
        "min_part_ml_in_use": cfg.min_part_ml,
        "best_min_component_ml": component, "best_min_enhancing_ml": enhancing,
        "mean_dice_off": off, "mean_dice_best": means[component, enhancing], "mean_dice_in_use": used,
        "mean_dice_by_min_component_ml": {str(c): d for (c, e), d in means.items() if e == enhancing},
        "mean_dice_by_min_enhancing_ml": {str(e): d for (c, e), d in means.items() if c == component},
        "advice": (f"Post-processing these cases favour: [inference] min_component_ml = {component:g}, "
                   f"min_enhancing_ml = {enhancing:g} (mean WT/TC/ET {what} {off:.4f} with both off, "
                   f"{means[component, enhancing]:.4f} with these; in use: {in_use[0]:g} / {in_use[1]:g}; "
                   f"specks below min_part_ml = {cfg.min_part_ml:g} removed first). "
                   "A 3-D run chooses them when its training ends ([postprocessing]); judge others on cases "
                   "it did not train on (--subset validation)."),
    }
