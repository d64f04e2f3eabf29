"""Self-training for the label-efficient chain: the segmenter trained on pseudo-masks makes the next masks.

Round 0 is the multi-task network trained on the first pseudo-masks (the seed maps'). Each later
round predicts the mask of every tumour image with the last round's network (probability >=
`confidence`, inside the head, the largest component; "no tumour" images stay empty, drawn masks
stay drawn), writes them as a new BRISC-layout dataset and trains a fresh multi-task network on it
from the same start (the SimCLR encoder), the same split, config and budget.

Every round's network gets its mask threshold chosen on the validation images
(`evaluation/mask_threshold.py`) before it scores or makes masks. The validation reference
(`validation_reference`) is every validation tumour image with its drawn mask where the user has
drawn it (`drawn_ids`) and its first pseudo-mask elsewhere: never trained on, noisy but not learnt,
so a network that fits them better on held-out images is closer to what they are noisy about.
Stop rules, written down (`SelfTraining`):
- a round is kept only if its network's pooled mask Dice against the validation reference beats
  the best round's by `min_gain`; the first round that does not ends the loop, and the best round's
  network is the chain's result;
- a kept round whose masks agree with the previous round's (pooled Dice over the training images)
  at `stable_dice` or more ends the loop (nothing left to learn from itself);
- and never more than `rounds` rounds.
Drawn masks of images that are not in `drawn_ids` are never read here; the chain scores against
them separately (reporting only).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class SelfTraining:
    rounds: int = 0  # rounds after the first network (0: seed 000's chain)
    confidence: float = 0.5  # the segmenter's probability that makes a mask pixel
    min_gain: float = 0.005  # the validation Dice a round must add to be kept
    stable_dice: float = 0.95  # masks this close to the last round's end the loop

    def __post_init__(self):
        if self.rounds < 0 or not 0 < self.confidence < 1:
            raise ValueError(f"self-training needs rounds >= 0 and confidence in (0, 1); got {self.rounds}, "
                             f"{self.confidence}")


def segmenter_masks(model, confidence: float):
    """`make_masks` for `write_pseudomask_dataset`: a multi-task network's masks of tumour images."""
    from kerasbrain.data.classes import NO_TUMOR
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.evaluation.pseudomask import head_mask, largest_components

    def make(images, labels):
        predicted = predict_images(model, images)
        probabilities = predicted["mask"]
        explained = np.where(labels >= 0, labels, predicted["class"].argmax(axis=1))
        masks = np.zeros(images.shape[:3], bool)
        for i in range(len(images)):
            if explained[i] != NO_TUMOR:
                mask = (probabilities[i] >= confidence) & head_mask(images[i])
                masks[i] = largest_components(mask, 1) if mask.any() else mask
        return masks, probabilities.astype(np.float32), explained

    return make


def pick_drawn(samples, split: dict, fraction: float, seed: int = 0) -> frozenset:
    """A seeded `fraction` of the train tumour images with drawn masks and the same of the validation
    ones (at least one of each when the fraction is positive): the drawings a user would have, some
    to train on and some for the stop rule."""
    from kerasbrain.data.classes import NO_TUMOR

    if fraction <= 0:
        return frozenset()
    rng, chosen = np.random.default_rng(seed), []
    for subset in ("train", "validation"):
        members = set(split.get(subset, []))
        pool = sorted(s.id for s in samples if s.id in members and s.mask is not None
                      and s.label not in (None, NO_TUMOR))
        if pool:
            count = min(len(pool), max(1, int(round(fraction * len(pool)))))
            chosen += rng.choice(pool, size=count, replace=False).tolist()
    return frozenset(chosen)


def dataset_masks(dataset: Path, size: int, ids: set[str]) -> np.ndarray:
    """A pseudo-mask dataset's masks of `ids` (by source id), stacked in sorted id order."""
    import csv

    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples

    with open(dataset / "pseudomasks.csv", newline="") as f:
        stems = {row["id"]: row["stem"] for row in csv.DictReader(f) if row["id"] in ids}
    by_stem = {s.id: s for s in discover_tumour_images(dataset / "brisc2025")}
    samples = [by_stem[stems[i]] for i in sorted(stems)]
    return load_samples(samples, size)[2][..., 0] > 0


def validation_reference(samples, split: dict, drawn_ids, first_pseudo: Path, size: int):
    """(images, reference masks, what they are) of every validation tumour image: its drawn mask where
    the user has drawn it (`drawn_ids`), its first pseudo-mask elsewhere (the first pseudo-mask
    dataset holds both); None without any. A handful of drawings then sharpens the reference without
    shrinking it to one or two images."""
    from kerasbrain.data.classes import NO_TUMOR
    from kerasbrain.data.tumour_images import load_samples

    validation = set(split.get("validation", []))
    tumour = sorted((s for s in samples if s.id in validation and s.label not in (None, NO_TUMOR)),
                    key=lambda s: s.id)
    if not tumour:
        return None
    drawn = sum(s.id in drawn_ids for s in tumour)
    against = ("drawn" if drawn == len(tumour) else "pseudo" if not drawn
               else f"{drawn} drawn + {len(tumour) - drawn} pseudo")
    return load_samples(tumour, size)[0], dataset_masks(first_pseudo, size, {s.id for s in tumour}), against


def validation_dice(model, reference) -> float | None:
    """The network's pooled mask Dice against the validation reference (None without one)."""
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.evaluation.pseudomask import dice

    if reference is None:
        return None
    images, masks, _ = reference
    return dice(masks, predict_images(model, images)["mask"] >= 0.5)


def set_round_threshold(run: Path, reference, progress=print) -> float | None:
    """The run's mask threshold chosen against the validation reference and folded into its best model."""
    from kerasbrain.evaluation.mask_threshold import set_operating_point

    if reference is None:
        return None
    return set_operating_point(run, reference[0], reference[1], reference[2], progress)["threshold"]


def round_decision(best_score: float | None, score: float | None, agreement: float,
                   settings: SelfTraining) -> tuple[bool, str | None]:
    """(keep this round's network, why the loop stops or None) by the stop rules above."""
    if score is not None and score < (best_score or 0.0) + settings.min_gain:
        return False, f"validation Dice {score:.4f} does not beat the best round's {best_score or 0.0:.4f} by " \
                      f"{settings.min_gain}"
    if agreement >= settings.stable_dice:
        return True, f"masks agree with the last round's at Dice {agreement:.4f}"
    return True, None


def self_train(out_dir: Path, samples, split: dict, config, first_run: Path, first_pseudo: Path,
               settings: SelfTraining, drawn_ids=frozenset(), time_budget=None, progress=print,
               reference=None) -> dict:
    """Rounds as above, scored against `reference` (`validation_reference`; the first run's threshold is
    already set against it); returns {"run": the chosen network's run folder, "pseudo": the masks it trained on,
    "rounds": one row per round, "history": its training history (None when round 0 is chosen)}."""
    from kerasbrain.evaluation.pseudomask import dice, write_pseudomask_dataset
    from kerasbrain.experiments.label_efficient import _split_for
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides
    from kerasbrain.files import write_json
    from kerasbrain.runs import BEST_MODEL, SPLIT_FILE

    family = get_family("multitask")
    model, size = family.load_with_size(first_run / BEST_MODEL, InferenceOverrides())
    train_ids = set(split.get("train", []))
    score = validation_dice(model, reference)
    against = reference[2] if reference is not None else None
    rows = [{"round": 0, "run": str(first_run), "pseudo_dir": str(first_pseudo), "validation_dice": score,
             "validation_against": against, "agreement_with_previous": None,
             "pseudo": json.loads((first_pseudo / "summary.json").read_text()).get("vs_drawn")}]
    best, last_pseudo, histories = 0, first_pseudo, {}
    for r in range(1, settings.rounds + 1):
        progress(f"== self-training round {r}/{settings.rounds}: masks from round {r - 1}'s network")
        pseudo = out_dir / f"pseudomasks_round{r}"
        if not (pseudo / "summary.json").exists():
            write_pseudomask_dataset(None, samples, size, pseudo, make_masks=segmenter_masks(model, settings.confidence),
                                     drawn_ids=drawn_ids, progress=progress)
        agreement = dice(dataset_masks(last_pseudo, size, train_ids), dataset_masks(pseudo, size, train_ids))
        run = out_dir / f"multitask_round{r}"
        run.mkdir(parents=True, exist_ok=True)
        if not (run / SPLIT_FILE).exists():
            write_json(run / SPLIT_FILE, _split_for(pseudo, split), indent=1)
        histories[r] = family.train(pseudo / "brisc2025", run, config, time_budget=time_budget,
                                    progress=progress)["history"]
        set_round_threshold(run, reference, progress)
        model, _ = family.load_with_size(run / BEST_MODEL, InferenceOverrides())
        score = validation_dice(model, reference)
        rows.append({"round": r, "run": str(run), "pseudo_dir": str(pseudo), "validation_dice": score,
                     "validation_against": against, "agreement_with_previous": round(agreement, 4),
                     "pseudo": json.loads((pseudo / "summary.json").read_text()).get("vs_drawn")})
        last_pseudo = pseudo
        keep, stop = round_decision(rows[best]["validation_dice"], score, agreement, settings)
        best = r if keep else best
        if stop:
            rows[-1]["decision"] = f"stop: {stop}"
            break
    rows[best]["chosen"] = True
    return {"run": Path(rows[best]["run"]), "pseudo": Path(rows[best]["pseudo_dir"]), "rounds": rows,
            "history": histories.get(best)}
