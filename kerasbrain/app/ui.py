"""`kerasbrain app`: the Gradio page. Layout and wiring only; the work is in `kerasbrain.app.handlers`.

Every event handler catches what goes wrong and shows one line in the page's status box (the
traceback goes to the app's log), so a bad upload never breaks the page or the app. Cases run on
Gradio's queue, so the page stays responsive and shows progress; each browser session works in
its own temporary folder (`handlers.Workspace`), removed when the page closes.
"""

import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the app runs offline

import gradio as gr  # noqa: E402  (Gradio reads handlers' `gr.Request` annotations, so it is imported here)

from kerasbrain.app import handlers, views  # noqa: E402
from kerasbrain.app.catalogue import find_local_models, find_served_models  # noqa: E402
from kerasbrain.app.report import write_report  # noqa: E402

log = logging.getLogger("kerasbrain.app")

#: Epochs and steps of the demo model the page can train when no model is found (a few CPU minutes).
DEMO_EPOCHS, DEMO_STEPS = 12, 20
LABEL_CHOICES = [name for name, _ in views.LABEL_STYLE.values()]
CHANNELS = ["FLAIR", "T1", "T1Gd", "T2"]


def _status(kind: str, text: str) -> str:
    return f"**{kind}:** {text}"


def build_app(models_dir="runs", server=None, saved_models="saved_models",
              max_upload_mb: float = handlers.DEFAULT_MAX_UPLOAD_MB, workspace=None):
    """The app as a `gradio.Blocks`; `launch_app` starts it."""
    models_dir = Path(models_dir)
    workspace = workspace or handlers.Workspace()

    def catalogue():
        warn = log.warning
        found = find_served_models(server, saved_models, warn) if server else find_local_models(models_dir, warn)
        return {m.label: m for m in found}

    def empty_note() -> str:
        where = f"{saved_models} (served by {server})" if server else str(models_dir)
        return (f"No model found in `{where}`. Train one with `kerasbrain demo --out {models_dir}/demo` "
                f"(a 3-D U-Net on phantoms, 3-10 CPU minutes) or `kerasbrain train FAMILY --data ... --out "
                f"{models_dir}/NAME`, then press *Refresh*"
                + ("" if server else ", or train the demo model here") + ".")

    def refresh(current=None):
        models = catalogue()
        choices = list(models)
        value = current if current in models else (choices[0] if choices else None)
        return (gr.update(choices=choices, value=value), gr.update(value=empty_note(), visible=not choices),
                gr.update(visible=not choices and not server))

    def train_demo(progress=gr.Progress()):
        from kerasbrain.demo import run_demo

        def report(message):
            log.info(message)
            progress(handlers.fraction_of(message), desc=message.strip().splitlines()[0][:120] if message.strip()
                     else None)

        try:
            run_demo(models_dir / "demo", epochs=DEMO_EPOCHS, steps_per_epoch=DEMO_STEPS, progress=report)
        except Exception as exc:
            log.exception("demo training failed")
            return (_status("Could not train the demo model", str(exc)),) + refresh()
        return (_status("Done", f"the demo model is in `{models_dir / 'demo' / 'run'}`"),) + refresh()

    def run(label, uploads, report_format, request: gr.Request, progress=gr.Progress()):
        nothing = (None, gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                   gr.update(visible=False), None, "", None, gr.update(), None, gr.update(choices=[], value=None))
        models = catalogue()
        if label not in models:
            return (_status("No model", "pick a model first" if models else empty_note()),) + nothing
        model = models[label]
        session = getattr(request, "session_hash", None) or "anonymous"
        folder = workspace.new_run(session)
        paths = [getattr(f, "name", f) for f in (uploads or [])]
        try:
            result = handlers.run_model(model, paths, folder, max_upload_mb,
                                        progress=lambda fraction, message: progress(fraction, desc=message))
            report = write_report(result, folder / f"report.{report_format.lower()}")
        except handlers.UploadError as exc:
            return (_status("Cannot use this upload", str(exc)),) + nothing
        except Exception as exc:  # the page shows one line; the log keeps the traceback
            log.exception("prediction failed")
            shown = _one_line(exc).replace(f"{folder / 'input'}{os.sep}", "")  # name the upload, not our folder
            return (_status("Could not run the model", shown),) + nothing
        p = result.prediction
        downloads = [str(f) for f in (p.mask, report) if f is not None]
        probabilities = p.class_probabilities
        volume = result.kind == "volume"
        view = slider = None
        if volume:
            centre = views.tumour_centre(p.labels)
            view = views.render_view(p.image, p.labels, "axial", centre[2], spacing=p.spacing)
            slider = gr.update(maximum=views.slice_count(p.image.shape, "axial") - 1, value=centre[2])
        else:
            slider = gr.update()
        text = "; ".join(p.lines + list(result.notes)) or "done"
        return (_status("Done", text), str(p.figure) if p.figure else views.overlay_picture(p),
                gr.update(value=probabilities, visible=probabilities is not None),
                gr.update(value=str(result.explanation) if result.explanation else None,
                          visible=result.explanation is not None),
                gr.update(visible=volume), view, views.volumes_table(p.region_volumes_ml), downloads,
                slider, result, gr.update(choices=views.lesion_choices(p.report), value=None))

    def redraw(result, plane, index, channel, shown, opacity):
        if result is None or result.kind != "volume":
            return None
        p = result.prediction
        labels = [k for k, (name, _) in views.LABEL_STYLE.items() if name in (shown or [])]
        return views.render_view(p.image, p.labels, plane, int(index), CHANNELS.index(channel), labels,
                                    float(opacity), p.spacing)

    def change_plane(result, plane):
        if result is None or result.kind != "volume":
            return gr.update()
        p = result.prediction
        centre = views.tumour_centre(p.labels)
        return gr.update(maximum=views.slice_count(p.image.shape, plane) - 1,
                         value=centre[{"axial": 2, "coronal": 1, "sagittal": 0}[plane]])

    def go_to_lesion(result, choice):
        """Show the chosen lesion: the axial plane at its RANO slice (or its centre)."""
        if result is None or result.kind != "volume":
            return gr.update(), gr.update()
        p = result.prediction
        z = views.lesion_slice(p.report, choice)
        if z is None:
            return gr.update(), gr.update()
        return gr.update(value="axial"), gr.update(maximum=views.slice_count(p.image.shape, "axial") - 1, value=z)

    def leave(request: gr.Request):
        workspace.release(getattr(request, "session_hash", None) or "anonymous")

    with gr.Blocks(title="kerasbrain", analytics_enabled=False) as app:
        gr.Markdown("# kerasbrain\nBrain-tumour MRI models: upload a case, see and check the result, download it. "
                    "For research; not a medical device.")
        with gr.Row():
            picker = gr.Dropdown(label="Model", choices=[], elem_id="model", scale=4)
            refresh_button = gr.Button("Refresh", elem_id="refresh", scale=1)
        note = gr.Markdown(visible=False, elem_id="empty-note")
        demo_button = gr.Button("Train the demo model here", visible=False, elem_id="train-demo")
        uploads = gr.File(label="A slice (PNG/JPEG/TIFF), a NIfTI case (one 4-D file or the four BraTS modalities) "
                                "or a DICOM study (.zip)",
                          file_count="multiple", elem_id="upload")
        with gr.Row():
            report_format = gr.Radio(["PNG", "PDF"], value="PNG", label="Report", elem_id="report-format")
            run_button = gr.Button("Run", variant="primary", elem_id="run")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            figure = gr.Image(label="Result", type="filepath", interactive=False, elem_id="figure")
            with gr.Column():
                probabilities = gr.Label(label="Class probabilities", num_top_classes=4, elem_id="classes",
                                         visible=False)
                explanation = gr.Image(label="Grad-CAM", type="filepath", interactive=False, elem_id="gradcam",
                                       visible=False)
        with gr.Group(visible=False, elem_id="viewer") as viewer:
            with gr.Row():
                plane = gr.Radio(list(views.PLANES), value="axial", label="Plane", elem_id="plane")
                channel = gr.Dropdown(CHANNELS, value="FLAIR", label="Image", elem_id="channel")
            index = gr.Slider(0, 1, value=0, step=1, label="Slice", elem_id="slice")
            with gr.Row():
                shown = gr.CheckboxGroup(LABEL_CHOICES, value=LABEL_CHOICES, label="Labels", elem_id="labels")
                opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Opacity", elem_id="opacity")
            lesions = gr.Dropdown([], label="Lesions (choose one to show its slice)", elem_id="lesions")
            view = gr.Image(label="Viewer", type="numpy", interactive=False, elem_id="view")
            volumes = gr.Markdown(elem_id="volumes")
        downloads = gr.File(label="Downloads: mask and report", file_count="multiple", interactive=False,
                            elem_id="downloads")
        result = gr.State(None)

        app.load(refresh, [picker], [picker, note, demo_button])
        refresh_button.click(refresh, [picker], [picker, note, demo_button])
        demo_button.click(train_demo, None, [status, picker, note, demo_button], concurrency_limit=1)
        run_button.click(lambda: _status("Running", "the case is on its way; progress shows here"), None, status,
                         queue=False).then(run, [picker, uploads, report_format],
                         [status, figure, probabilities, explanation, viewer, view, volumes, downloads, index, result,
                          lesions])
        lesions.change(go_to_lesion, [result, lesions], [plane, index])
        plane.input(change_plane, [result, plane], [index])  # a user's choice; go_to_lesion sets its own slice
        for control in (plane, index, channel, shown, opacity):
            control.change(redraw, [result, plane, index, channel, shown, opacity], [view], show_progress="hidden")
        app.unload(leave)
    app.workspace = workspace
    return app


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def launch_app(models_dir="runs", server=None, saved_models="saved_models", host="127.0.0.1", port=7860,
               max_upload_mb: float = handlers.DEFAULT_MAX_UPLOAD_MB, block: bool = True):
    """Start the app on `host:port`; with `block=False` return (app, url) and keep serving in the background."""
    app = build_app(models_dir, server, saved_models, max_upload_mb)
    app.queue(default_concurrency_limit=2)
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                               max_file_size=f"{int(max_upload_mb)}mb", ssr_mode=False, show_error=False,
                               allowed_paths=[str(app.workspace.root)])
    finally:
        if block:
            app.workspace.close()
    return app, url


__all__ = ["build_app", "launch_app"]
