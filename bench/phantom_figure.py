"""One picture of each phantom generator and difficulty: the four sequences and the labels.

    python bench/phantom_figure.py [--seed 0] [--shape 120 120 78] [--out docs/phantoms/generators.png]

Rows: shapes easy, shapes hard, anatomy easy, anatomy hard (`kerasbrain.data.phantom.GENERATORS`);
columns: FLAIR, T1, T1Gd, T2 on the axial slice with the most tumour, then the labels (edema green,
necrotic / non-enhancing core blue, enhancing red) over FLAIR.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE  # noqa: E402
from kerasbrain.data.phantom import GENERATORS  # noqa: E402
from kerasbrain.evaluation.figures import tumour_slice  # noqa: E402

COLOURS = {EDEMA: (0.2, 0.8, 0.2, 0.45), NECROTIC_CORE: (0.2, 0.4, 1.0, 0.6), ENHANCING: (1.0, 0.2, 0.2, 0.7)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(120, 120, 78))
    parser.add_argument("--out", default="docs/phantoms/generators.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(g, d) for g in GENERATORS for d in ("easy", "hard")]
    fig, axes = plt.subplots(len(rows), 5, figsize=(12.5, 2.6 * len(rows)))
    for row, (generator, difficulty) in zip(axes, rows):
        image, labels = GENERATORS[generator](tuple(args.shape), seed=args.seed, difficulty=difficulty)
        z = tumour_slice(labels)
        for ax, m, name in zip(row, range(4), ("FLAIR", "T1", "T1Gd", "T2")):
            plane = np.rot90(image[:, :, z, m])
            ax.imshow(plane, cmap="gray", vmin=0, vmax=np.percentile(plane, 99.5))
            ax.set_title(f"{generator} {difficulty}: {name}" if m == 0 else name, fontsize=9)
        overlay = np.zeros(labels.shape[:2] + (4,))
        for label, colour in COLOURS.items():
            overlay[labels[:, :, z] == label] = colour
        flair = np.rot90(image[:, :, z, 0])
        row[4].imshow(flair, cmap="gray", vmin=0, vmax=np.percentile(flair, 99.5))
        row[4].imshow(np.rot90(overlay))
        row[4].set_title("labels: ED green, NCR blue, ET red", fontsize=9)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=72)
    print(args.out)


if __name__ == "__main__":
    main()
