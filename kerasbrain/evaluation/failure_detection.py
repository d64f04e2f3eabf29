"""Does a case-level confidence find the failed cases? Risk-coverage analysis (Zenk et al. 2025).

A confidence score is useful if the cases it ranks lowest are the ones whose masks are worst, so a
reader who checks the least confident first finds the failures first. Risk is 1 - Dice. Keeping
the k most confident of n cases (coverage k / n), the selective risk is the mean risk of those k;
the area under that curve over k = 1..n (AURC) is low when confident cases are good ones. Two
references make it readable: the oracle that ranks by the true Dice (the lowest AURC any score
could reach; AURC minus it is the excess, e-AURC) and a random ranking, whose expected selective
risk at every coverage is the mean risk. Beside it: Spearman's rank correlation of confidence and
Dice, the mean absolute gap between them (meaningful for scores on Dice's scale), and the AUROC of
flagging failures (Dice below `failure_below`) by low confidence. Ties in confidence are ranked in
random order, in expectation, so a constant score scores exactly as random.
"""

from __future__ import annotations

import math

import numpy as np

from kerasbrain.data.labels import REGIONS


def selective_risks(confidence, risk) -> np.ndarray:
    """Expected mean risk of the k most confident cases, k = 1..n (ties in random order)."""
    confidence, risk = np.asarray(confidence, np.float64), np.asarray(risk, np.float64)
    order = np.argsort(-confidence, kind="stable")
    confidence, risk = confidence[order], risk[order]
    out, kept_sum, start = np.empty(len(risk)), 0.0, 0
    while start < len(risk):
        end = start + int(np.sum(confidence[start:] == confidence[start]))  # the tie group [start, end)
        group_mean = risk[start:end].mean()
        for k in range(start + 1, end + 1):
            out[k - 1] = (kept_sum + (k - start) * group_mean) / k
        kept_sum += risk[start:end].sum()
        start = end
    return out


def aurc(confidence, risk) -> float:
    """Area under the risk-coverage curve: the mean selective risk over coverages 1/n..n/n."""
    return float(selective_risks(confidence, risk).mean())


def failure_detection(confidence, dice, failure_below: float = 0.8) -> dict:
    """How well `confidence` ranks cases by their `dice` (one value each, same order); see the module."""
    confidence, dice = np.asarray(confidence, np.float64), np.asarray(dice, np.float64)
    if confidence.shape != dice.shape or confidence.ndim != 1:
        raise ValueError(f"confidence and dice must be two 1-D arrays of one value per case. "
                         f"Received: shapes {confidence.shape} and {dice.shape}")
    keep = ~(np.isnan(confidence) | np.isnan(dice))
    confidence, dice = confidence[keep], dice[keep]
    if confidence.size == 0:
        return {"cases": 0}
    risk = 1.0 - dice
    failed = dice < failure_below
    result = {
        "cases": int(confidence.size), "failures": int(failed.sum()), "failure_below": failure_below,
        "aurc": aurc(confidence, risk), "aurc_oracle": aurc(dice, risk), "aurc_random": float(risk.mean()),
        "spearman": _spearman(confidence, dice),
        "mean_abs_error": float(np.abs(confidence - dice).mean()),
        "auroc_failure": auroc(failed, -confidence),
    }
    result["eaurc"] = result["aurc"] - result["aurc_oracle"]
    return {k: (round(v, 4) if isinstance(v, float) and not math.isnan(v) else v) for k, v in result.items()}


def failure_detection_by_region(rows: list[dict], score: str, failure_below: float = 0.8) -> dict:
    """`failure_detection` per region from per-case rows holding `{score}_{region}` and `dice_{region}`."""
    return {r: failure_detection([row[f"{score}_{r}"] for row in rows], [row[f"dice_{r}"] for row in rows],
                                 failure_below) for r in REGIONS if rows and f"{score}_{r}" in rows[0]}


def failure_detection_advice(detection: dict, table: str = "cases.csv") -> str:
    """One line per confidence score: its AURC per region (or per unit: slices, patients) against a
    random ranking's and the oracle's, and which table to sort."""
    lines = []
    for score, regions in detection.items():
        lines.append(f"Case confidence `{score}` (risk 1 - Dice of the most confident cases, area over coverage; "
                     "lower is better): " + "; ".join(
                         f"{r} {d['aurc']:.3f} (random {d['aurc_random']:.3f}, oracle {d['aurc_oracle']:.3f})"
                         for r, d in regions.items() if d.get("cases")))
    return "\n".join(lines) + (f"\nSort {table} by these columns to read the least confident first."
                               if lines else "")


def _spearman(a, b) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None  # undefined for a constant
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def auroc(positive, score) -> float | None:
    """ROC AUC of `score` for the `positive` cases; None unless both kinds are there."""
    if positive.all() or not positive.any():
        return None  # needs failed and good cases
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, score))
