"""Our results beside a seed's published numbers: the cell text is computed from known rows."""

from kerasbrain.experiments.published import PUBLISHED, beside_published


def test_each_cell_is_ours_then_the_seeds():
    rows = [{"variant": "raw-resnet50", "dice": 0.9, "iou": 0.81234, "accuracy": 0.99, "precision": 0.5,
             "recall": 0.25, "val_loss": 0.2},
            {"variant": "raw-resnet18", "dice": 0.7, "iou": 0.6, "accuracy": 0.9, "precision": 0.8, "recall": 0.6,
             "val_loss": None}]
    table = beside_published("seed004", rows, "variant", ("dice", "iou", "val_loss"))
    lines = table.splitlines()
    assert lines[0] == "| variant | dice (ours / seed004) | iou (ours / seed004) | val loss (ours / seed004) |"
    assert lines[2] == "| raw-resnet50 | 0.9000 / 0.8898 | 0.8123 / 0.8015 | 0.2000 / 0.1265 |"
    assert lines[3] == "| raw-resnet18 | 0.7000 / - | 0.6000 / - | - / - |"  # the seed had no ResNet-18 row
    assert PUBLISHED["seed004"]["source"] in table


def test_a_row_whose_seed_counterpart_differs_says_so():
    rows = [{"model": "ResNet multi-task (class + mask)", "accuracy": 0.5, "macro_f1": 0.4}]
    table = beside_published("seed000", rows, "model", ("accuracy", "macro_f1"))
    assert "0.5000 / 0.8528" in table and "SSL + pseudo-mask + multi-task" in table
