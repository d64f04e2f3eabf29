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
#: The server's own estimate, when only the label map came back (`segment_case`'s `expected_dice`).
SERVED_NOTE = CONFIDENCE_NOTE + "; computed by the server, of the label map before post-processing"
#: Why a report has no confidence: the label map came back from a server without its probabilities
#: (or an estimate: a version exported before `segment_case` answered one).
NO_PROBABILITIES_NOTE = ("not estimated: predicted through a server that sent the label map alone; "
                         "`predict --probabilities` fetches the probabilities it needs")


def write_case_report(fmt, case, labels, probabilities, uncertainty, out,
                      served_estimate=None) -> tuple[dict, list[Path]]:
    """The report (returned and written beside `out`) and the files written, the report last.

    `probabilities` None: only the label map is known (a server sent nothing else), so the report has
    no lesion mean probabilities, and its confidence is the server's `served_estimate` (WT, TC, ET)
    where it sent one, else none, saying why."""
    from kerasbrain.data.channel_check import channel_warnings
    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.files import write_json
    from kerasbrain.inference.uncertainty import uncertainty_summary
    from kerasbrain.data.labels import REGIONS
    from kerasbrain.metrics.case_confidence import case_confidence
    from kerasbrain.metrics.measurements import case_measurements

    regions = labels_to_regions(labels).astype(bool)
    # each lesion's confidence: its mean probability, and with uncertainty its entropy and variance
    if uncertainty is not None:
        means = uncertainty.lesion_maps()
    else:
        means = {"mean_probability": probabilities} if probabilities is not None else None
    if probabilities is not None:
        scores = case_confidence(probabilities, regions, uncertainty)
        confidence = {kind: {r: scores[f"{kind}_{r}"] for r in REGIONS}
                      for kind in ("expected_dice", "agreement") if f"{kind}_WT" in scores}
        confidence["note"] = CONFIDENCE_NOTE
    elif served_estimate is not None:
        confidence = {"expected_dice": {r: round(float(v), 4) for r, v in zip(REGIONS, served_estimate)},
                      "note": SERVED_NOTE}
    else:
        confidence = {"note": NO_PROBABILITIES_NOTE}
    report = {"case": case.case_id, **case_measurements(regions, case.grid.spacing, case.grid.canonical_affine,
                                                        per_lesion_means=means),
              "confidence": confidence,
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
    if "expected_dice" not in conf:
        return f"estimated Dice: {conf['note']}"
    line = "estimated Dice WT/TC/ET " + "/".join(f"{conf['expected_dice'][r]:.2f}" for r in REGIONS)
    if "agreement" in conf:
        line += ", member agreement " + "/".join(f"{conf['agreement'][r]:.2f}" for r in REGIONS)
    return line + " (from its own probabilities; not a measurement)"
