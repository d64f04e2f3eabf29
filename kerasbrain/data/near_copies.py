"""Near copies of 2-D pictures: what a pixel hash cannot see (a lossy re-encoding, a brightness change).

Each picture becomes a z-scored 64 x 64 grey thumbnail; pairs whose thumbnails correlate at or
above a threshold are near copies, and pairs are joined into groups transitively. `data check`
reports a group across splits (or patients) as a problem and one within a split as a note.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

#: Thumbnail correlation at and above which two pictures are near copies. A JPEG re-encoding at quality 50
#: correlates above 0.998; different phantom and MRI pictures, even of one class, stay well below.
NEAR_COPY_CORRELATION = 0.99


def thumbnail(image: np.ndarray, side: int = 64) -> np.ndarray:
    """A picture as a z-scored `side` x `side` grey thumbnail, flattened (what `near_copies` compares)."""
    import cv2

    grey = image.astype(np.float32).mean(axis=-1) if image.ndim == 3 else image.astype(np.float32)
    small = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).ravel()
    return (small - small.mean()) / max(float(small.std()), 1e-6)


def near_copies(thumbnails: dict[str, np.ndarray], threshold: float = NEAR_COPY_CORRELATION,
                block: int = 2048) -> list[tuple[str, str, float]]:
    """Pairs (a, b, correlation) of thumbnails correlating at or above `threshold`, in blocks (bounded memory)."""
    names = sorted(thumbnails)
    if len(names) < 2:
        return []
    matrix = np.stack([thumbnails[n] for n in names]).astype(np.float32) / np.sqrt(len(thumbnails[names[0]]))
    pairs = []
    for start in range(0, len(names), block):
        scores = matrix[start:start + block] @ matrix.T
        for i, j in zip(*np.nonzero(scores >= threshold)):
            if start + i < j:
                pairs.append((names[start + i], names[j], float(scores[i, j])))
    return pairs


def near_copy_findings(thumbnails, hashes, split_of, what, groups_are=""):
    """(problems, notes), one line per group of near copies (pairs joined transitively): a group across
    splits (or groups) is a problem, one within a split a note; groups of exact copies only are left to
    `_duplicates`."""
    parent = {}

    def root(name):
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    best = {}
    for a, b, score in near_copies(thumbnails):
        parent[root(b)] = root(a)
        best[(a, b)] = score
    clusters = defaultdict(list)
    for name in {n for pair in best for n in pair}:
        clusters[root(name)].append(name)
    problems, notes = [], []
    for names in clusters.values():
        names = sorted(names)
        if len({hashes.get(n) for n in names}) == 1:
            continue
        lowest = min(score for (a, b), score in best.items() if a in names)
        line = f"{', '.join(names)} (thumbnail correlation >= {lowest:.3f})"
        splits = sorted({split_of.get(n, "") for n in names})
        if len(splits) > 1:
            where = f"in {groups_are + ' ' if groups_are else ''}{' and '.join(splits)}"
            problems.append(f"near copies of a {what} (a lossy re-encoding?) {where}: {line}")
        elif not groups_are:
            notes.append(f"near copies of a {what} within {splits[0] or 'the data'}: {line}")
    return sorted(problems), sorted(notes)
