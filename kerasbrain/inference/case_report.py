"""A volumetric prediction's `<stem>_report.json`: what a reader measures and how far to trust it.

Volumes, lesions and RANO diameters (`metrics/measurements.py`), each lesion with its mean
probability; what is wrong with the input's sequences (`data/channel_check.py`: blank or copied);
each region's case-level confidence (`metrics/case_confidence.py`: the Dice the model's
own probabilities expect, and with uncertainty its members' agreement); with uncertainty each
lesion's mean entropy and variance too and, beside the result, the entropy and variance maps in the
input's format.
"""

from __future__ import annotations

from pathlib import Path

#: What the case-level confidence is, in the report's words.
CONFIDENCE_NOTE = ("estimated from the model's own probabilities, not measured: it ranks cases for review "
                   "(lowest first) and cannot see confident mistakes")


def write_case_report(fmt, case, labels, probabilities, uncertainty, out) -> tuple[dict, list[Path]]:
    """The report (returned and written beside `out`) and the files written, the report last."""
    from kerasbrain.data.channel_check import channel_warnings
    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.files import write_json
    from kerasbrain.inference.uncertainty import uncertainty_summary
    from kerasbrain.data.labels import REGIONS
    from kerasbrain.metrics.case_confidence import case_confidence
    from kerasbrain.metrics.measurements import case_measurements

    regions = labels_to_regions(labels).astype(bool)
    # each lesion's confidence: its mean probability, and with uncertainty its entropy and variance
    means = uncertainty.lesion_maps() if uncertainty is not None else {"mean_probability": probabilities}
    scores = case_confidence(probabilities, regions, uncertainty)
    confidence = {kind: {r: scores[f"{kind}_{r}"] for r in REGIONS}
                  for kind in ("expected_dice", "agreement") if f"{kind}_WT" in scores}
    report = {"case": case.case_id, **case_measurements(regions, case.grid.spacing, case.grid.canonical_affine,
                                                        per_lesion_means=means),
              "confidence": {**confidence, "note": CONFIDENCE_NOTE},
              "input_warnings": channel_warnings(case.image),
              "note": "measurements only: no diagnosis or response category is implied"}
    written = []
    if uncertainty is not None:
        report["uncertainty"] = {"members": uncertainty.members, "networks": uncertainty.networks,
                                 "entropy": "binary entropy of the mean probability, bits (QU-BraTS: x 100)",
                                 "variance": f"variance of the probabilities over {uncertainty.describe_members()}",
                                 **uncertainty_summary(uncertainty, regions)}
        written = fmt.write_maps(case, {"entropy": uncertainty.entropy, "variance": uncertainty.variance}, out,
                                 model="unet3d")
    written.append(write_json(Path(out).with_name(fmt.stem(Path(out)) + "_report.json"), report))
    return report, written


def confidence_line(report: dict) -> str:
    """The confidence in one line for the CLI and the app's report."""
    from kerasbrain.data.labels import REGIONS

    conf = report["confidence"]
    line = "estimated Dice WT/TC/ET " + "/".join(f"{conf['expected_dice'][r]:.2f}" for r in REGIONS)
    if "agreement" in conf:
        line += ", member agreement " + "/".join(f"{conf['agreement'][r]:.2f}" for r in REGIONS)
    return line + " (from its own probabilities; not a measurement)"
