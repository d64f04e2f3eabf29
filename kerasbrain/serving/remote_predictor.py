"""A served model as a predictor: what local prediction calls, answered by a serving client.

`RemoteWindowPredictor` stands where the in-process window predictor stands (`(raw windows, mean,
std) -> probabilities`), and where the served version has the whole-case signature with the asked
settings it hands `predict_volume` a `RemoteCasePredictor` that sends the case in one request. So
`kerasbrain predict --server ...` writes exactly what local prediction writes.
"""

from __future__ import annotations

import numpy as np

from kerasbrain.serving.client import RestClient, with_retries


class RemoteWindowPredictor:
    """A window predictor `(raw batch, mean, std) -> probabilities` backed by a serving client.

    With `case_settings` (the served version has `segment_case`, exported with these inference
    settings) prediction asks for a whole case in one request instead, whenever the settings asked
    for are the exported ones (`volume_predictor`, the hook `predict_volume` looks for).
    """

    def __init__(self, client, signature_name: str = "serving_default", case_settings: dict | None = None,
                 fetch_probabilities: bool = True, served_estimate: bool = False):
        self.client = client
        self.signature_name = signature_name
        self.case_settings = case_settings
        self.fetch_probabilities = fetch_probabilities
        self.served_estimate = served_estimate  # the case signature answers `expected_dice` beside the mask
        self.last_estimate = None  # that answer for the last case sent for its label map alone

    def __call__(self, batch, mean, std):
        outputs = self.client.predict({"image": np.asarray(batch, np.float32),
                                       "channel_mean": np.asarray(mean, np.float32),
                                       "channel_std": np.asarray(std, np.float32)},
                                      self.signature_name, output_filter=["probabilities"])
        return outputs["probabilities"]

    def volume_predictor(self, window, overlap, batch_size, mirror, blend, moments=False):
        """A whole-case predictor when the served graph computes what is asked, else None (windows)."""
        settings = self.case_settings
        if settings is None or moments:  # the graph blends no second moments: uncertainty goes by windows
            return None
        asked = {"window": [int(w) for w in window], "overlap": float(overlap), "batch_size": int(batch_size),
                 "mirror": bool(mirror)}
        exported = {"window": [int(w) for w in settings["window"]], "overlap": float(settings["overlap"]),
                    "batch_size": int(settings["batch_size"]), "mirror": bool(settings["mirror"])}
        if asked != exported:
            return None
        keep = (lambda estimate: setattr(self, "last_estimate", estimate)) if self.served_estimate else None
        return RemoteCasePredictor(self.client, self.fetch_probabilities, keep)


class RemoteCasePredictor:
    """`(raw case, mean, std) -> probabilities` in one request to the `segment_case` signature.

    The statistics are not sent: the graph computes them. Without `fetch_probabilities` only the
    label map comes back and is returned as 0/1 region maps, which threshold to the same regions
    (the graph decoded them at the run's threshold): a twentieth of the bytes. Over REST the case
    goes gzipped (`segment_case_compressed`, int16 when its values are whole numbers) unless
    probabilities are asked for. A busy server (429) is retried with back-off (`with_retries`).
    With `on_estimate`, the label map's `expected_dice` (WT, TC, ET) comes back too and is handed to it.
    Returns None when the case's head box is not the whole array
    (possible after resampling): the graph would place its windows on the box, so windows it is.
    """

    def __init__(self, client, fetch_probabilities: bool = True, on_estimate=None):
        self.client = client
        self.fetch_probabilities = fetch_probabilities
        self.on_estimate = on_estimate

    def __call__(self, image, mean=None, std=None):
        from kerasbrain.data.labels import labels_to_regions
        from kerasbrain.data.preprocess import nonzero_bbox

        image = np.ascontiguousarray(image, np.float32)
        if nonzero_bbox(image) != tuple((0, s) for s in image.shape[:-1]):
            return None
        if self.fetch_probabilities:
            return with_retries(lambda: self.client.predict({"image": image[None]}, "segment_case",
                                                            output_filter=["probabilities"]))["probabilities"][0]
        if isinstance(self.client, RestClient):
            from kerasbrain.export.compressed import encode_case

            whole = np.array_equal(image, np.round(image)) and np.abs(image).max(initial=0) < 2**15
            inputs, signature = encode_case(image, "int16" if whole else "float32"), "segment_case_compressed"
        else:
            inputs, signature = {"image": image[None]}, "segment_case"
        wanted = ["mask", "expected_dice"] if self.on_estimate else ["mask"]
        outputs = with_retries(lambda: self.client.predict(inputs, signature, output_filter=wanted))
        if self.on_estimate:
            self.on_estimate(np.asarray(outputs["expected_dice"][0], np.float64))
        # the compact twin pads each mask to the largest case of its request
        mask = outputs["mask"][0][tuple(slice(0, s) for s in image.shape[:-1])]
        return labels_to_regions(mask).astype(np.float32)
