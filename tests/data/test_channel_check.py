"""Blank and copied sequences are named; distinct sequences of a phantom head are not."""

import numpy as np
import pytest

from kerasbrain.data.channel_check import channel_warnings
from kerasbrain.data.phantom import make_phantom
from kerasbrain.data.phantom_anatomy import make_anatomical_phantom


@pytest.fixture(scope="module")
def head():
    return make_phantom((33, 34, 35), seed=0)[0]


@pytest.mark.parametrize("make", [make_phantom, make_anatomical_phantom])
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_the_phantoms_sequences_are_all_there_and_all_different(make, difficulty):
    for seed in (0, 1):
        image = make((33, 34, 35), seed=seed, difficulty=difficulty)[0]
        assert image.shape[-1] == 4 and channel_warnings(image) == []


def test_a_copied_sequence_is_named_with_what_it_copies(head):
    copied = head.copy()
    copied[..., 2] = copied[..., 1]  # post-contrast T1 filled in with the pre-contrast one
    (warning,) = channel_warnings(copied)
    assert warning.startswith("t1gd is a copy of T1w (in-head correlation 1.0000")
    rescaled = head.copy()
    rescaled[..., 3] = 2.5 * rescaled[..., 0] + 7.0 * (rescaled[..., 0] != 0)  # a rescaled copy is a copy too
    assert channel_warnings(rescaled)[0].startswith("T2w is a copy of FLAIR")


def test_a_blank_sequence_is_named_and_not_called_a_copy(head):
    blank = head.copy()
    blank[..., 0] = 0.0  # FLAIR missing, zero-filled
    assert channel_warnings(blank) == ["FLAIR is constant inside the head (a missing sequence?): what only it "
                                       "shows cannot be segmented"]
    assert channel_warnings(np.zeros((4, 4, 4, 4))) == ["every sequence is blank: nothing to segment"]
    two = np.stack([head[..., 0], head[..., 0]], -1)  # other channel counts get generic names
    assert channel_warnings(two)[0].startswith("channel 1 is a copy of channel 0")
