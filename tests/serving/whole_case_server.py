"""A tiny real 3-D U-Net exported with its run's inference settings and served on free loopback ports."""

from __future__ import annotations

import dataclasses

from kerasbrain.export.saved_model import export_version


def serve_with_settings(model, name: str, root, settings, **options):
    """Export `model` as version 1 of `name` under `root` with `settings` (an InferenceConfig) as the run's,
    and start `kerasbrain serve`'s server on it; returns the started server (call `stop()`)."""
    from kerasbrain.serving.server import ServerOptions, build_server

    export_version(model, name, root, version=1, manifest_extra={"family": "unet3d",
                                                                 "inference": dataclasses.asdict(settings),
                                                                 "target_spacing": [], "out_channels": 3})
    server = build_server(model_name=name, model_base_path=root / name,
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0, **options))
    return server.start()


def tiny_unet(seed: int):
    """A real 3-D U-Net of 4 base filters and depth 2, seeded."""
    import keras

    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(seed)
    return UNet(base_filters=4, depth=2)

