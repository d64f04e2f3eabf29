"""Per-voxel uncertainty from the mirror members: known entropies, moments equal to the members'
own mean and variance on both blending paths, and per-lesion confidence on hand-built lesions."""

import itertools

import keras
import numpy as np
import pytest

from kerasbrain.inference.sliding_window import flips, sliding_window_predict
from kerasbrain.inference.uncertainty import Uncertainty, binary_entropy, lesion_confidence


def test_binary_entropy_known_values():
    np.testing.assert_allclose(binary_entropy(np.array([0.0, 1.0, 0.5, 0.25, 0.75])),
                               [0.0, 0.0, 1.0, 0.811278, 0.811278], atol=1e-6)


def test_moments_give_the_members_mean_and_variance():
    members = np.array([0.2, 0.8, 0.5, 0.5])  # one voxel, one region, four members
    moments = np.array([members.mean(), (members ** 2).mean()], np.float32).reshape(1, 1, 1, 2)
    u = Uncertainty.from_moments(moments, 4)
    assert u.probabilities[0, 0, 0, 0] == pytest.approx(0.5)
    assert u.variance[0, 0, 0, 0] == pytest.approx(members.var(), abs=1e-6)  # 0.045
    assert u.entropy[0, 0, 0, 0] == pytest.approx(1.0)
    assert u.qubrats_scale()[0, 0, 0, 0] == pytest.approx(100.0)
    nearly = Uncertainty.from_moments(np.array([0.9999, 0.9999 ** 2], np.float32).reshape(1, 1, 1, 2), 8)
    assert 0 < nearly.entropy[0, 0, 0, 0] < 0.005 and nearly.qubrats_scale()[0, 0, 0, 0] == 0.0  # kept at tau = 0


def _not_flip_equivariant(batch):
    """A window predictor whose answer depends on the view: a ramp along x times the input's sign."""
    ramp = np.linspace(0.1, 0.9, batch.shape[1], dtype=np.float32)[None, :, None, None, None]
    return np.clip(ramp * (batch[..., :2] > 0), 0, 1)


def test_host_moments_are_the_eight_members_mean_and_mean_square():
    rng = np.random.default_rng(0)
    volume = (rng.uniform(size=(8, 8, 8, 2)) > 0.3).astype(np.float32)  # one window: blending is the identity
    out = sliding_window_predict(volume, _not_flip_equivariant, (8, 8, 8), 2, mirror=True, moments=True)
    assert out.shape == (8, 8, 8, 4)
    members = []
    for axes in itertools.chain.from_iterable(itertools.combinations(range(3), r) for r in range(4)):
        flipped = np.flip(volume, axes) if axes else volume
        pred = _not_flip_equivariant(flipped[None])[0]
        members.append(np.flip(pred, axes) if axes else pred)
    members = np.stack(members)
    assert len(members) == len(flips(3, True)) == 8
    np.testing.assert_allclose(out[..., :2], members.mean(0), atol=1e-6)
    np.testing.assert_allclose(out[..., 2:], (members ** 2).mean(0), atol=1e-6)
    assert (out[..., 2:] - out[..., :2] ** 2).max() > 0.01  # the members disagree: real spread
    plain = sliding_window_predict(volume, _not_flip_equivariant, (8, 8, 8), 2, mirror=True)
    np.testing.assert_allclose(out[..., :2], plain, atol=1e-6)  # the mean is mirror TTA's answer


def test_device_moments_equal_the_host_moments_with_a_real_model():
    from kerasbrain.inference.device_window import DeviceSlidingWindow
    from kerasbrain.intensity import normalize_np
    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(1)
    model = UNet(in_channels=2, out_channels=3, base_filters=4, depth=2)
    rng = np.random.default_rng(1)
    volume = rng.normal(100, 20, (20, 16, 12, 2)).astype(np.float32)
    mean, std = volume.reshape(-1, 2).mean(0), volume.reshape(-1, 2).std(0)
    device = DeviceSlidingWindow(model, (8, 8, 8), 0.5, 3, mirror=True, jit_compile=False, moments=True)
    on_device = device(volume, mean, std)
    host = sliding_window_predict(volume, lambda b: np.asarray(model.predict_on_batch(normalize_np(b, mean, std))),
                                  (8, 8, 8), 3, overlap=0.5, batch_size=3, mirror=True, moments=True)
    assert on_device.shape == host.shape == (20, 16, 12, 6)
    np.testing.assert_allclose(on_device, host, atol=2e-5)


def test_lesion_confidence_on_hand_built_lesions():
    regions = np.zeros((20, 20, 10, 3), bool)
    regions[2:6, 2:6, 2:4, 0] = True  # WT lesion 1: 32 voxels
    regions[12:14, 12:14, 5:6, 0] = True  # WT lesion 2: 4 voxels
    regions[2:6, 2:6, 2:4, 1] = True  # TC: one lesion
    probabilities = np.zeros((20, 20, 10, 3), np.float32)
    probabilities[2:6, 2:6, 2:4] = 0.9
    probabilities[12:14, 12:14, 5:6, 0] = 0.6
    u = Uncertainty(probabilities, binary_entropy(probabilities), np.zeros_like(probabilities), 8)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = (-10, -20, 5)
    rows = lesion_confidence(regions, u, (2.0, 2.0, 3.0), affine)
    assert [(r["region"], r["lesion"], r["voxels"]) for r in rows] == [("WT", 1, 32), ("WT", 2, 4), ("TC", 1, 32)]
    first, second = rows[0], rows[1]
    assert first["volume_ml"] == pytest.approx(32 * 12 / 1000) and first["centre_voxel"] == [3.5, 3.5, 2.5]
    assert first["centre_mm"] == [-3.0, -13.0, 12.5]
    assert first["mean_probability"] == pytest.approx(0.9) and second["mean_probability"] == pytest.approx(0.6)
    assert second["mean_entropy_bits"] == pytest.approx(0.970951, abs=1e-4)  # H(0.6)
    assert first["mean_entropy_bits"] < second["mean_entropy_bits"]


def _members_moments(members, weights, volume, mean, std, window, overlap, batch_size):
    """The ensemble's moments worked out member by member: each network's own mirror moments (host path),
    weighted as the ensemble weighs it; the variance is over every (network, flip) prediction."""
    from kerasbrain.intensity import normalize_np

    total = 0.0
    for member, weight in zip(members, weights):
        def predict(b, member=member):
            out = member.predict_on_batch(normalize_np(b, mean, std))
            return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)

        total = total + weight * sliding_window_predict(volume, predict, window, 3, overlap=overlap,
                                                        batch_size=batch_size, mirror=True, moments=True)
    return total


@pytest.mark.parametrize("blend", ["host", "device"])
def test_an_ensembles_uncertainty_spans_its_networks_and_the_mirror_views(blend):
    """predict_case_uncertain with an ensemble: mean and variance over 2 networks x 8 flips, equal to the
    members' moments combined by hand; wider than either network's own mirror spread where they disagree."""
    from kerasbrain.data.layouts import Case
    from kerasbrain.data.nifti import Grid
    from kerasbrain.data.preprocess import preprocess_case
    from kerasbrain.inference.config import InferenceConfig
    from kerasbrain.inference.predict_volume import predict_case_uncertain
    from kerasbrain.models.ensemble import EnsembleNet
    from kerasbrain.models.unet import UNet
    from kerasbrain.runtime import predictor

    keras.utils.set_random_seed(3)
    members = [UNet(base_filters=4, depth=2), UNet(base_filters=4, depth=2, deep_supervision=1)]
    weights = [0.25, 0.75]
    ensemble = EnsembleNet(members, weights)
    rng = np.random.default_rng(3)
    image = rng.normal(100, 20, (20, 18, 12, 4)).astype(np.float32)
    case = Case("C", image, None, Grid(image.shape[:3], np.diag([1.0, 1.0, 2.0, 1.0]), None, "C"), "msd")
    cfg = InferenceConfig(window=(8, 8, 8), overlap=0.5, batch_size=2, blend=blend, compile_mode="graph"
                          if blend == "host" else "xla")
    labels, u = predict_case_uncertain(case, predictor(ensemble, cfg.compile_mode), 3, cfg)
    assert (u.members, u.networks) == (16, 2) and u.describe_members() == "8 mirror views x 2 networks"

    pre = preprocess_case(case, None, normalize=False)
    moments = _members_moments(members, weights, pre.image, pre.mean, pre.std, (8, 8, 8), 0.5, 2)
    box = tuple(slice(a, b) for a, b in pre.bbox)
    expected = Uncertainty.from_moments(moments, 16, 2)
    np.testing.assert_allclose(u.probabilities[box], expected.probabilities, atol=2e-5)
    np.testing.assert_allclose(u.variance[box], expected.variance, atol=2e-5)
    # the law of total variance: within each network's flips, plus between the networks' means
    own = [Uncertainty.from_moments(_members_moments([m], [1.0], pre.image, pre.mean, pre.std, (8, 8, 8), 0.5, 2), 8)
           for m in members]
    within = sum(w * o.variance for w, o in zip(weights, own))
    between = sum(w * (o.probabilities - expected.probabilities) ** 2 for w, o in zip(weights, own))
    np.testing.assert_allclose(u.variance[box], within + between, atol=3e-5)
    assert between.mean() > 1e-3  # two random networks disagree: the spread is more than the flips'
