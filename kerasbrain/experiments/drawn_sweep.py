"""What a few drawings buy: the label-efficient chain's mask stages again with a share of drawn masks.

After the chain, with its SimCLR encoder and classifier shared, each share F of `fractions` gets
its own folder `drawn_<F>/` with stages 3 and 4 and the self-training rounds
(`label_efficient.masks_and_segmenter`): F of the train and of the validation tumour images (at
least one of each, seeded: `self_training.pick_drawn`) keep their drawn masks, the rest get
pseudo-masks; the validation drawings choose the mask threshold and judge the rounds. Each final
network is evaluated as the chain's is, on the test images against their drawn masks, so the
table's rows differ only in the drawings. `sweep_finished_chain` does the same for a chain that has
already run (`kerasbrain experiment drawn-sweep`), with its config, seed-map settings and split.
"""

from __future__ import annotations

import json
from pathlib import Path


def sweep_row(fraction: float, stage: dict, evaluation: dict) -> dict:
    """One row of the table from a masks-and-segmenter stage and its evaluation against drawn masks."""
    from kerasbrain.evaluation.mask_threshold import RECORD

    record = Path(stage["run"]) / RECORD
    return {"fraction": fraction, "drawn_images": len(stage["drawn_ids"]), "run": str(stage["run"]),
            "pseudo_vs_drawn": (stage["pseudo_summary"].get("vs_drawn") or {}).get("pooled_dice"),
            "threshold": json.loads(record.read_text())["threshold"] if record.exists() else None,
            "dice_vs_drawn": (evaluation.get("masks") or {}).get("dice"),
            "accuracy": evaluation["classes"]["accuracy"], "macro_f1": evaluation["classes"]["macro_f1"]}


def evaluate_against_drawn(run: Path, data_dir: Path, test_ids, progress=print) -> dict:
    """The run's test scores against the source dataset's labels and drawn masks (its `evaluation_drawn/`)."""
    from kerasbrain.families import get_family

    out = Path(run) / "evaluation_drawn"
    get_family("multitask").evaluate(run, data_dir, out, test_ids or None, progress=progress)
    return json.loads((out / "summary.json").read_text())


def run_drawn_sweep(data_dir: Path, out_dir: Path, samples, split: dict, config, pseudomask, self_training,
                    fractions, time_budget=None, progress=print) -> list[dict]:
    """One row per share in `fractions` (folders `out_dir / drawn_<F>`), as described above."""
    from kerasbrain.experiments.label_efficient import masks_and_segmenter

    rows = []
    for fraction in fractions:
        name = f"drawn {fraction:.0%}"
        stage = masks_and_segmenter(Path(out_dir) / f"drawn_{fraction:g}", Path(out_dir) / "classifier", samples,
                                    split, config, pseudomask, self_training, fraction, time_budget, progress,
                                    steps=(f"{name}: 1/2", f"{name}: 2/2"))
        rows.append(sweep_row(fraction, stage, evaluate_against_drawn(stage["run"], data_dir, split["test"],
                                                                       progress)))
    return rows


def sweep_table(rows: list[dict]) -> str:
    """Markdown: per share of drawings, the masks trained on and the final network on the test images."""
    def number(value):
        return "-" if value is None else f"{value:.4f}"

    lines = ["| drawn share | drawn images | pseudo-masks vs drawn (pooled Dice) | mask threshold | "
             "segmenter vs drawn test masks (Dice) | accuracy | macro F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        threshold = "-" if row["threshold"] is None else f"{row['threshold']:g}"
        lines.append(f"| {row['fraction']:.0%} | {row['drawn_images']} | {number(row['pseudo_vs_drawn'])} | "
                     f"{threshold} | "
                     f"{number(row['dice_vs_drawn'])} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} |")
    return "\n".join(lines)


def sweep_finished_chain(chain_dir, data_dir, fractions, time_budget=None, self_training=None,
                         progress=print) -> dict:
    """`run_drawn_sweep` beside a finished label-efficient chain in `chain_dir`: its classifier, its
    multi-task config (SimCLR encoder included), its first pseudo-masks' settings and its split; the
    rows go to `chain_dir / drawn_sweep.json` and `.md`."""
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.evaluation.pseudomask import PseudoMaskSettings
    from kerasbrain.experiments.self_training import SelfTraining
    from kerasbrain.families import get_family
    from kerasbrain.files import write_json, write_text
    from kerasbrain.runs import SPLIT_FILE

    chain_dir, data_dir = Path(chain_dir), Path(data_dir)
    needed = [chain_dir / "classifier" / SPLIT_FILE, chain_dir / "multitask" / "config.json",
              chain_dir / "pseudomasks" / "summary.json"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise ValueError(f"{chain_dir}: not a finished label-efficient chain ({missing[0]} is missing)")
    samples = discover_tumour_images(data_dir)
    if not any(s.mask is not None for s in samples):
        raise ValueError(f"{data_dir}: the drawn-mask sweep needs drawn masks (a BRISC 2025 layout); none found")
    split = json.loads(needed[0].read_text())
    config = get_family("multitask").run_config(chain_dir / "multitask")
    settings = PseudoMaskSettings(**json.loads(needed[2].read_text())["settings"])
    rows = run_drawn_sweep(data_dir, chain_dir, samples, split, config, settings, self_training or SelfTraining(),
                           fractions, time_budget, progress)
    table = sweep_table(rows)
    write_json(chain_dir / "drawn_sweep.json", {"rows": rows, "seed_map": settings.__dict__})
    write_text(chain_dir / "drawn_sweep.md", table + "\n")
    return {"rows": rows, "table": table}
