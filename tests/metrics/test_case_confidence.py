"""Case-level confidence: the expected Dice and the members' agreement on hand-computed cases."""

import itertools

import numpy as np
import pytest

from kerasbrain.inference.uncertainty import Uncertainty
from kerasbrain.metrics.case_confidence import case_confidence, expected_dice, expected_dice_ops, member_agreement


def test_expected_dice_is_the_ratio_of_expected_overlap_and_sizes():
    p = np.zeros((6, 6, 6))
    p[:2, :5] = 0.8  # 10 x 6 = 60 voxels, all in the mask
    p[4, :5] = 0.2  # 30 voxels outside it
    mask = p >= 0.5
    # 2 * (60 * 0.8) / (60 + 60 * 0.8 + 30 * 0.2) = 96 / 114
    assert expected_dice(p, mask) == pytest.approx(96 / 114)
    certain = mask.astype(float)
    assert expected_dice(certain, mask) == pytest.approx(1.0)


def test_an_empty_mask_is_trusted_as_much_as_nothing_looks_likely():
    p = np.full((4, 4, 4), 0.01)
    p[1, 1, 1] = 0.3
    assert expected_dice(p, np.zeros(p.shape, bool)) == pytest.approx(0.7)
    assert expected_dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 4), bool)) == pytest.approx(1.0)


def _pairwise_soft_dice(members):
    """Mean over ordered pairs of different members of 2 sum(a b), over the same of sum(a) + sum(b)."""
    pairs = [(a, b) for a, b in itertools.permutations(members, 2)]
    return np.mean([2 * (a * b).sum() for a, b in pairs]) / np.mean([a.sum() + b.sum() for a, b in pairs])


def test_member_agreement_is_the_members_pairwise_soft_dice_from_their_moments():
    a, b = np.array([1.0, 1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0])
    two = np.stack([a, b])
    assert member_agreement(two.mean(0), two.var(0), 2) == pytest.approx(2 / 3)  # 2 * 1 / (2 + 1)
    rng = np.random.default_rng(0)
    for n in (3, 8):
        members = rng.uniform(0, 1, (n, 5, 5, 5)) ** 3
        assert member_agreement(members.mean(0), members.var(0), n) == pytest.approx(_pairwise_soft_dice(members))
    same = np.stack([a] * 4)
    assert member_agreement(same.mean(0), same.var(0), 4) == pytest.approx(1.0)
    # members that each predict a faint haze and a mask left empty: the empty mask's rule, 1 - max m
    haze = np.stack([np.full(50, 0.1), np.full(50, 0.05)])
    assert member_agreement(haze.mean(0), haze.var(0), 2) < 0.1  # as soft maps they hardly overlap
    assert member_agreement(haze.mean(0), haze.var(0), 2, mask=np.zeros(50, bool)) == pytest.approx(0.925)
    with pytest.raises(ValueError, match="members=1"):
        member_agreement(a, a * 0, 1)


def test_case_confidence_per_region_with_and_without_the_members():
    rng = np.random.default_rng(1)
    members = rng.uniform(0, 1, (8, 6, 6, 6, 3)) ** 0.7
    moments = np.concatenate([members.mean(0), (members ** 2).mean(0)], -1).astype(np.float32)
    u = Uncertainty.from_moments(moments, 8)
    regions = u.probabilities >= 0.5
    assert regions.any(axis=(0, 1, 2)).all()  # no region empty: the agreement is the members' own
    plain = case_confidence(u.probabilities, regions)
    assert sorted(plain) == ["expected_dice_ET", "expected_dice_TC", "expected_dice_WT"]
    both = case_confidence(u.probabilities, regions, u)
    for i, r in enumerate(("WT", "TC", "ET")):
        assert both[f"expected_dice_{r}"] == plain[f"expected_dice_{r}"] == pytest.approx(
            expected_dice(u.probabilities[..., i], regions[..., i]), abs=1e-4)
        assert both[f"agreement_{r}"] == pytest.approx(_pairwise_soft_dice(members[..., i]), abs=1e-3)


def test_the_graphs_expected_dice_equals_the_hosts_for_every_case_and_region():
    """What a served case answers (`expected_dice_ops`) against `expected_dice` case by case: cases of
    different contents in one batch, an empty mask among them, and a large case summed in float32."""
    from keras import ops

    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.export.signatures import decode_regions_ops, regions_of_labels_ops

    rng = np.random.default_rng(3)
    probs = rng.beta(0.3, 0.6, size=(3, 10, 9, 7, 3)).astype(np.float32)
    probs[1, ..., 2] *= 0.4  # case 1 predicts no enhancing tumour: its ET estimate is 1 - max p
    labels = ops.convert_to_numpy(decode_regions_ops(probs))
    regions = ops.convert_to_numpy(regions_of_labels_ops(labels))
    np.testing.assert_array_equal(regions, labels_to_regions(labels).astype(bool))  # the graph's nesting is the host's
    assert not regions[1, ..., 2].any() and regions[0, ..., 2].any()
    served = ops.convert_to_numpy(expected_dice_ops(probs, regions))
    assert served.shape == (3, 3)
    for i, r in itertools.product(range(3), range(3)):
        assert served[i, r] == pytest.approx(expected_dice(probs[i, ..., r], regions[i, ..., r]), abs=1e-6), (i, r)
    big = np.full((1, 240, 240, 155, 1), 0.3, np.float32)  # 8.9 million voxels, a BraTS case
    big[0, :120, ..., 0] = 0.9
    mask = big >= 0.5
    value = float(ops.convert_to_numpy(expected_dice_ops(big, mask))[0, 0])
    assert value == pytest.approx(expected_dice(big[0, ..., 0], mask[0, ..., 0]), rel=1e-6)
