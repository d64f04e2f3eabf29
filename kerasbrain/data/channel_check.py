"""Before trusting a prediction: are all of the case's sequences there, and all different?

A study that lacks a sequence often arrives with the gap filled: a blank (constant) volume, or a copy
of another sequence (a post-contrast T1 imputed by the pre-contrast one, a series sent twice). The
network then answers confidently about what it cannot see, and neither the case confidence nor the
members' spread notices (README, "Which cases to read first": with the post-contrast T1 replaced
by the pre-contrast one, enhancing-tumour Dice fell to 0.17 while its estimate stayed at 0.91). So
`predict` says so in a line and the case report keeps it. Both checks are exact, not learned: a
sequence constant inside the head, or one whose in-head voxels correlate with another's at 0.999 or
more (a copy, rescaled or not; distinct MRI sequences of one head correlate far less).
"""

from __future__ import annotations

import numpy as np

#: The sequences in the order every volumetric input format loads them (MSD Task01's).
SEQUENCES = ("FLAIR", "T1w", "t1gd", "T2w")
#: Two sequences whose in-head voxels correlate at least this much are one sequence twice.
COPY_CORRELATION = 0.999


def channel_warnings(image: np.ndarray, names=None) -> list[str]:
    """One line per problem in the (X, Y, Z, C) `image`: a constant sequence, a copied one."""
    image = np.asarray(image)
    channels = image.shape[-1]
    names = list(names or (SEQUENCES if channels == len(SEQUENCES) else [f"channel {c}" for c in range(channels)]))
    head = np.any(image != 0, axis=-1)
    if not head.any():
        return ["every sequence is blank: nothing to segment"]
    values = [image[..., c][head].astype(np.float64) for c in range(channels)]
    constant = [float(np.ptp(v)) == 0.0 for v in values]
    warnings = [f"{names[c]} is constant inside the head (a missing sequence?): what only it shows cannot be "
                "segmented" for c in range(channels) if constant[c]]
    for b in range(channels):
        for a in range(b):
            if constant[a] or constant[b]:
                continue
            r = float(np.corrcoef(values[a], values[b])[0, 1])
            if r >= COPY_CORRELATION:
                warnings.append(f"{names[b]} is a copy of {names[a]} (in-head correlation {r:.4f}; a missing "
                                f"sequence filled in?): what only {names[b]} shows cannot be segmented")
    return warnings
