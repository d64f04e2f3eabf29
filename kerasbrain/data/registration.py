"""Rigid registration of two volumes in world space (SimpleITK), for modalities of one study and for
two time points of one patient.

Arrays are (i, j, k) volumes with a voxel -> RAS world affine, as kerasbrain keeps them; SimpleITK
works in LPS, so the affine is converted on the way in. The registration is an Euler (rigid)
transform found by Mattes mutual information over three resolution levels, so it works across
modalities and contrasts; images are resampled linearly, label maps by nearest neighbour.
"""

from __future__ import annotations

import numpy as np

LPS = np.diag([-1.0, -1.0, 1.0])
#: The metric's random sample. Not 0: SimpleITK reads seed 0 as "seed from the wall clock"
#: (`sitk.sitkWallClock`), which made every registration of the same images a different one.
SAMPLING_SEED = 20261206


def to_itk(volume: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of a 3-D (i, j, k) array on a voxel -> RAS affine."""
    import SimpleITK as sitk

    direction = LPS @ np.asarray(affine, float)[:3, :3]
    spacing = np.linalg.norm(direction, axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(volume).transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetDirection((direction / spacing).ravel().tolist())
    image.SetOrigin((LPS @ np.asarray(affine, float)[:3, 3]).tolist())
    return image


def rigid_transform(fixed, moving):
    """The Euler transform taking `fixed`'s physical points to `moving`'s (SimpleITK images, float32)."""
    import SimpleITK as sitk

    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.1, seed=SAMPLING_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=200)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moving)


def resample_onto(moving, fixed, transform, labels: bool = False) -> np.ndarray:
    """`moving` (a SimpleITK image) on `fixed`'s grid through `transform`, as an (i, j, k) array; 0 outside."""
    import SimpleITK as sitk

    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    pixel = moving.GetPixelID() if labels else sitk.sitkFloat32
    moved = sitk.Resample(moving, fixed, transform, interpolator, 0, pixel)
    return sitk.GetArrayFromImage(moved).transpose(2, 1, 0)
