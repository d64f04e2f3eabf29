"""The preprocessing cache's size, said from the headers before it is written, and refused when it cannot fit."""

import shutil
from collections import namedtuple

import pytest

from kerasbrain.data.cache_space import CachePlan, check_cache_space, plan_cache
from kerasbrain.data.errors import DataError
from kerasbrain.data.layouts import discover
from kerasbrain.data.preprocess import cached_preprocess, is_cached


def test_the_estimate_is_the_headers_grid_and_bounds_the_real_cache(msd_dir, brats2021_dir, tmp_path):
    msd = discover(msd_dir).labelled()
    plan = plan_cache(msd, tmp_path / "cache", None, lambda c: is_cached(c, tmp_path / "cache"))
    assert (plan.cases, plan.already_cached, plan.unknown) == (len(msd), 0, 0)
    assert plan.bytes_at_most == len(msd) * 41 * 38 * 35 * (4 * 4 + 1)  # TINY_SHAPE, 4 modalities + labels
    folder = cached_preprocess(msd[0], tmp_path / "cache")
    written = sum(f.stat().st_size for f in folder.glob("*.npy") if f.name != "foreground.npy")
    assert written <= plan.bytes_at_most / len(msd)
    again = plan_cache(msd, tmp_path / "cache", None, lambda c: is_cached(c, tmp_path / "cache"))
    assert (again.cases, again.already_cached) == (len(msd) - 1, 1)
    assert "cases to preprocess, 1 already cached, at most" in again.describe()
    # resampled to 2 mm from the phantoms' 1 mm: every side halves, rounded up
    coarse = plan_cache(msd[:1], tmp_path / "other", (2.0, 2.0, 2.0))
    assert coarse.bytes_at_most == 21 * 19 * 18 * 17
    # BraTS 2021: four 3-D files per case count as four channels
    brats = discover(brats2021_dir).labelled()
    assert plan_cache(brats, tmp_path / "b").bytes_at_most == len(brats) * 41 * 38 * 35 * 17


def test_a_cache_that_cannot_fit_is_refused_in_one_line_before_anything_is_written(msd_dir, tmp_path, monkeypatch):
    from kerasbrain.training.config import config_from_dict
    from kerasbrain.training.train_unet3d import train_unet3d

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 2**29, 2**29))
    config = config_from_dict({"training": {"patch_size": [16, 16, 16]}, "data": {"validation_fraction": 0.34}})
    with pytest.raises(DataError) as err:
        train_unet3d(msd_dir, tmp_path / "run", config, epochs=1, verbose=0, progress=lambda m: None)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "run" / "cache") in message and "only 537 MB is free" in message
    assert not (tmp_path / "run" / "cache").exists() or not any((tmp_path / "run" / "cache").iterdir())
    plan = CachePlan(3, 0, 10**9, 0, 10**9, tmp_path)  # fits exactly, but not with the 1 GiB margin
    with pytest.raises(DataError):
        check_cache_space(plan)
    check_cache_space(CachePlan(3, 0, 10**9, 0, 10**9 + 2**30, tmp_path))
