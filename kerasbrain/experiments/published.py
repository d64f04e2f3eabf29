"""The seeds' published numbers, and our results set beside them in one table.

Copied from the seeds' READMEs (`shared/seeds/`), each with what it was measured on, so a user who
reproduces a seed on the real data reads ours and theirs cell by cell. Phantom runs (`--quick`) are
not comparable with them; the table is the same so that real runs are.
"""

from __future__ import annotations

#: seed -> {"source": where the numbers come from, "rows": {our row key: {column: value}}, "notes": {row: text}}
PUBLISHED = {
    "seed004": {
        "source": "seed 004's README, its kaggle_3m test split (ImageNet encoders, two-stage fine-tuning)",
        "rows": {
            "raw-resnet50": {"dice": 0.8898, "iou": 0.8015, "accuracy": 0.9963, "precision": 0.8820, "recall": 0.8978,
                             "val_loss": 0.1265},
            "preprocessed-resnet50": {"dice": 0.8861, "iou": 0.7955, "accuracy": 0.9962, "precision": 0.8812,
                                      "recall": 0.8911, "val_loss": 0.1225},
            "preprocessed-efficientnet_b0": {"dice": 0.8808, "iou": 0.7870, "accuracy": 0.9961, "precision": 0.8915,
                                             "recall": 0.8704, "val_loss": 0.1293},
            "raw-efficientnet_b0": {"dice": 0.8807, "iou": 0.7869, "accuracy": 0.9962, "precision": 0.9118,
                                    "recall": 0.8517, "val_loss": 0.1401},
        },
        "notes": {},
    },
    "seed000": {
        "source": "seed 000's README, the Kaggle 4-class test images",
        "rows": {
            "ResNet supervised (single-task)": {"accuracy": 0.8172, "macro_f1": 0.8021},
            "ResNet multi-task (class + mask)": {"accuracy": 0.8528, "macro_f1": 0.8424},
            # the chain's final model on the test set ("Key Results") and its per-class table
            "SSL + pseudo-mask + multi-task": {"accuracy": 0.8909, "macro_f1": 0.8837, "macro_roc_auc": 0.9842,
                                               "dice_vs_pseudo_mask": 0.533},
            "glioma": {"precision": 0.9255, "recall": 0.8700, "f1": 0.8969},
            "meningioma": {"precision": 0.8715, "recall": 0.7092, "f1": 0.7820},
            "no_tumor": {"precision": 0.9076, "recall": 0.9704, "f1": 0.9379},
            "pituitary": {"precision": 0.8559, "recall": 0.9900, "f1": 0.9181},
        },
        "notes": {"ResNet multi-task (class + mask)": "the seed's row is SSL + pseudo-mask + multi-task; ours is "
                                                      "the multi-task network trained on the data's own masks"},
    },
    "seed002": {
        "source": "seed 002's README, kaggle_3m test pixels pooled",
        "rows": {"pixels": {"iou": 0.7257, "recall": 0.8398, "precision": 0.8733, "dice": 0.8562}},
        "notes": {"pixels": "the seed's F1 over pixels is the pooled Dice"},
    },
    "seed003": {
        "source": "seed 003's README, MSD Task01 (best epoch; mean soft Dice over its label channels)",
        "rows": {"training patches": {"soft_dice": 0.7107, "dice_loss": 0.2667},
                 "validation patches": {"soft_dice": 0.7273, "dice_loss": 0.2629},
                 # its class-wise table (voxel sensitivity and specificity per label)
                 "edema": {"sensitivity": 0.8272, "specificity": 0.9767},
                 "necrotic_core": {"sensitivity": 0.6384, "specificity": 0.9985},
                 "enhancing": {"sensitivity": 0.9813, "specificity": 0.9872}},
        "notes": {"validation patches": "both over the three label channels (edema, non-enhancing / necrotic core, "
                                        "enhancing) on validation sub-volumes, at the epoch of lowest validation loss "
                                        "(its Dice loss is 1 - the squared soft Dice)",
                  "validation cases": "ours only: the whole volumes' WT / TC / ET probabilities, which the seed "
                                      "does not report"},
    },
}


def beside_published(seed: str, rows: list[dict], key: str, columns: tuple[str, ...], titles=None) -> str:
    """A Markdown table of `rows` (dicts keyed by `key` and `columns`) with the seed's published value after
    ours in every cell ("ours / seed"; "-" where the seed published none), its source and notes below."""
    published = PUBLISHED[seed]
    titles = titles or {c: c.replace("_", " ") for c in columns}
    lines = ["| " + " | ".join([key] + [f"{titles[c]} (ours / {seed})" for c in columns]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        theirs = published["rows"].get(row[key], {})
        cells = []
        for column in columns:
            ours = row.get(column)
            mine = "-" if ours is None else f"{ours:.4f}"
            cells.append(f"{mine} / {theirs[column]:.4f}" if column in theirs else f"{mine} / -")
        lines.append(f"| {row[key]} | " + " | ".join(cells) + " |")
    lines += ["", f"Published numbers: {published['source']}."]
    lines += [f"- {name}: {text}" for name, text in published["notes"].items() if any(r[key] == name for r in rows)]
    return "\n".join(lines)
