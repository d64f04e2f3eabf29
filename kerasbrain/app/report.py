"""The one-page report of a run of the web app (PNG or PDF): the pictures and the numbers."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from kerasbrain.app import views
from kerasbrain.app.views import LABEL_STYLE, PLANES, overlay_picture, render_view, tumour_centre


def write_report(result, path) -> Path:
    """A one-page report (PNG or PDF by `path`'s suffix) of a `handlers.AppResult`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf"):
        raise ValueError(f"{path}: a report is a .png or .pdf file")
    p = result.prediction
    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.suptitle("kerasbrain report", fontsize=16, x=0.05, ha="left")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = [f"model: {result.model_label}", "input: " + ", ".join(p_.name for p_ in result.inputs),
              f"made: {stamp}"]
    fig.text(0.05, 0.93, "\n".join(header), va="top", fontsize=9, family="monospace")
    panels, wide = [], None
    if result.kind == "volume" and p.image is not None:
        centre = list(tumour_centre(p.labels))
        measured = [x for x in (getattr(p, "report", None) or {}).get("lesions", []) if x.get("rano", {}).get("slice", -1) >= 0]
        if measured:  # the axial view at the largest enhancing lesion's RANO slice, where it was measured
            centre[2] = max(measured, key=lambda x: x["rano"]["product_mm2"])["rano"]["slice"]
        for plane, axis in zip(PLANES, (2, 1, 0)):
            panels.append((plane, render_view(p.image, p.labels, plane, centre[axis], spacing=p.spacing)))
    else:
        if p.image is not None:
            panels.append(("input", np.asarray(p.image)))
        picture = overlay_picture(p)
        if picture is not None:
            panels.append(("predicted mask", picture))
        if result.explanation is not None:
            import cv2

            wide = cv2.cvtColor(cv2.imread(str(result.explanation)), cv2.COLOR_BGR2RGB)
    for i, (title, picture) in enumerate(panels[:3]):
        ax = fig.add_axes([0.05 + i * 0.31, 0.60, 0.29, 0.28])
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if wide is not None:
        ax = fig.add_axes([0.05, 0.40, 0.90, 0.19])
        ax.imshow(wide)
        ax.axis("off")
    lines = []
    if p.region_volumes_ml:
        lines.append("Volumes")
        lines += [f"  {r}: {v:9.2f} mL" for r, v in p.region_volumes_ml.items()]
        lines.append("  labels: " + ", ".join(f"{name} ({colour})" for name, colour in
                                             zip((n for n, _ in LABEL_STYLE.values()), ("red", "green", "yellow"))))
    if p.class_probabilities:
        lines.append("Class probabilities" + (" (temperature-calibrated)" if "calibrated" in result.model_label
                                               else ""))
        for name, value in sorted(p.class_probabilities.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:16s} {value:6.3f}")
    lines += views.lesion_lines(getattr(p, "report", None))
    lines += [line for line in p.lines if not line.startswith(("volumes:", "class:", "lesions "))] + list(result.notes)
    fig.text(0.05, 0.37 if wide is not None else 0.56, "\n".join(lines), va="top", fontsize=10, family="monospace")
    fig.text(0.05, 0.03, "Made by kerasbrain for research. Not a medical device; not for diagnosis.",
             fontsize=8, color="grey")
    written = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix[1:].lower()))
    plt.close(fig)
    return written
