"""End to end in headless Chromium: the app on a loopback port, driven as a user drives it.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); elsewhere the test is
skipped with the reason. Set KERASBRAIN_SCREENSHOTS=DIR to keep the pages as pictures (the
README's screenshots come from here, with KERASBRAIN_APP_MODELS=DIR naming a folder of trained
models called `brain3d` (unet3d) and `brisc` (multitask) instead of the tiny untrained ones, and
optionally the volume to segment as `case.nii.gz`).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (installed by .ci/run)")
pytestmark = [once, needs_browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_models(tmp_path_factory, volume_run, multitask_run):
    if os.environ.get("KERASBRAIN_APP_MODELS"):
        return Path(os.environ["KERASBRAIN_APP_MODELS"])
    models = tmp_path_factory.mktemp("served-by-app")
    shutil.copytree(volume_run, models / "brain3d")
    shutil.copytree(multitask_run, models / "brisc")
    return models


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, app_models):
    yield from start_app(app_models, tmp_path_factory.mktemp("app-log"))


def start_app(models, log_dir):
    port = free_port()
    log = open(log_dir / "app.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "app", "--models", str(models), "--port", str(port),
                                "--max-upload-mb", "5"], stdout=log, stderr=subprocess.STDOUT,
                               cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            if process.poll() is not None:
                raise RuntimeError("the app stopped: " + (log_dir / "app.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the app did not answer in 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,2300"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(check, timeout=180, what="the page"):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def click(element, timeout=60):
    """Click once nothing covers the element: on a busy machine Gradio's loading overlay still may."""
    from selenium.common.exceptions import ElementClickInterceptedException

    def clicked():
        try:
            element.click()
            return True
        except ElementClickInterceptedException:
            return False

    wait_for(clicked, timeout, "the element to be uncovered")


def pick_model(driver, text):
    box = wait_for(lambda: css(driver, "#model input"), 60, "the page to load")[0]
    wait_for(lambda: box.is_enabled(), 20, "the model list to fill")
    click(box)
    option = wait_for(lambda: [o for o in css(driver, "[role=option]") if text in o.text], 20, "the model list")[0]
    click(option)
    wait_for(lambda: text in box.get_attribute("value"), 20, "the model choice")


def upload_and_run(driver, files):
    for clear in css(driver, "#upload button[aria-label='Clear']"):
        click(clear)
    css(driver, "#upload input[type=file]")[0].send_keys("\n".join(str(f) for f in files))
    wait_for(lambda: all(Path(f).name.split(".")[0] in css(driver, "#upload")[0].text for f in files), 30, "the upload")
    click(css(driver, "#run")[0])  # each test runs on a freshly loaded page, so the status starts empty

    def finished():
        text = css(driver, "#status")[0].text
        return text if text.startswith(("Done", "Cannot use", "Could not", "No model")) else None

    # Gradio may paint the status before the other outputs on a busy machine: tests wait for each one they read.
    return wait_for(finished, 300, "the result")


def download(driver, name):
    link = wait_for(lambda: css(driver, f"#downloads a[download='{name}']"), 30, f"the {name} link")[0]
    target = driver.downloads / name
    if target.exists():
        target.unlink()
    link.click()
    wait_for(lambda: target.is_file() and target.stat().st_size > 0
             and not list(driver.downloads.glob("*.crdownload")), 60, f"{name} to download")
    return target


def screenshot(driver, name):
    folder = os.environ.get("KERASBRAIN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def cli_predict(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_a_user_segments_a_volume_checks_it_and_downloads_the_clis_mask(browser, app_url, app_models, msd_dir,
                                                                        tmp_path):
    case = app_models / "case.nii.gz"
    case = case if case.is_file() else next((msd_dir / "imagesTs").glob("*.nii.gz"))
    browser.get(app_url)
    pick_model(browser, "brain3d (unet3d)")
    status = upload_and_run(browser, [case])
    assert status.startswith("Done") and "mL" in status, status
    wait_for(lambda: any("whole tumour (WT)" in e.text for e in css(browser, "#volumes")), 30, "the volumes table")
    first_view = wait_for(lambda: css(browser, "#view img"), 30, "the viewer")[0].get_attribute("src")
    screenshot(browser, "app_volume")
    css(browser, "#plane input[value='coronal']")[0].click()
    wait_for(lambda: any(e.get_attribute("src") != first_view for e in css(browser, "#view img")), 30, "the coronal view")
    mask = download(browser, f"{case.name[:-7]}_seg.nii.gz")
    cli_out = tmp_path / "cli_seg.nii.gz"
    cli_predict("predict", "--model", app_models / "brain3d", "--input", case, "--out", cli_out)
    assert mask.read_bytes() == cli_out.read_bytes()
    assert download(browser, "report.png").read_bytes()[:4] == b"\x89PNG"
    # the lesion list is the CLI report's; choosing a lesion shows the axial plane at its slice
    import json

    from kerasbrain.app import views

    report = json.loads((tmp_path / "cli_seg_report.json").read_text())
    choices = views.lesion_choices(report)
    assert choices, "the model found no lesion to list"
    click(css(browser, "#lesions input")[0])
    option = wait_for(lambda: [o for o in css(browser, "[role=option]") if o.text.strip() == choices[-1]], 20,
                      "the lesion list")[0]
    click(option)
    z = views.lesion_slice(report, choices[-1])
    wait_for(lambda: css(browser, "#plane input[value='axial']")[0].is_selected(), 20, "the axial plane")
    wait_for(lambda: css(browser, "#slice input[type=number]")[0].get_attribute("value") == str(z), 20,
             f"slice {z}")


def test_a_user_classifies_a_picture_and_downloads_its_mask(browser, app_url, app_models, tmp_path):
    from kerasbrain.data.phantom_classes import write_brisc

    image = sorted(write_brisc(tmp_path / "brisc", per_class=1, seed=4).rglob("*.jpg"))[0]
    browser.get(app_url)
    pick_model(browser, "brisc (multitask)")
    status = upload_and_run(browser, [image])
    assert status.startswith("Done") and "class:" in status, status
    wait_for(lambda: css(browser, "#gradcam img"), 60, "the Grad-CAM map")
    wait_for(lambda: any(name in e.text for e in css(browser, "#classes")
                         for name in ("Glioma", "Meningioma", "Pituitary", "No Tumor")), 30, "the class probabilities")
    screenshot(browser, "app_picture")
    mask = download(browser, f"{image.stem}_mask.png")
    cli_predict("predict", "--model", app_models / "brisc", "--input", image, "--out", tmp_path / "cli.png")
    assert mask.read_bytes() == (tmp_path / "cli_mask.png").read_bytes()


def test_broken_uploads_get_a_message_and_the_app_keeps_serving(browser, app_url, msd_dir, tmp_path):
    case = next((msd_dir / "imagesTs").glob("*.nii.gz"))
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(case.read_bytes()[:3000])
    huge = tmp_path / "huge.nii.gz"
    huge.write_bytes(os.urandom(6_000_000))  # over the app's 5 MB limit
    browser.get(app_url)
    pick_model(browser, "brain3d (unet3d)")
    status = upload_and_run(browser, [truncated])
    assert status.startswith("Could not run the model") and "truncated.nii.gz: cannot be read as NIfTI" in status
    screenshot(browser, "app_error")
    body = css(browser, "body")[0].text
    assert "Traceback" not in body
    css(browser, "#upload input[type=file]")[0].send_keys(str(huge))
    wait_for(lambda: "5" in css(browser, "body")[0].text and ("exceed" in css(browser, "body")[0].text.lower()
                                                            or "too large" in css(browser, "body")[0].text.lower()),
             30, "the size-limit message")
    browser.get(app_url)
    pick_model(browser, "brain3d (unet3d)")
    assert upload_and_run(browser, [case]).startswith("Done")


def test_an_empty_models_folder_says_how_to_get_a_model(browser, tmp_path):
    for url in start_app(tmp_path / "no-models-yet", tmp_path):
        browser.get(url)
        note = wait_for(lambda: css(browser, "#empty-note")[0].text if css(browser, "#empty-note") else "", 60,
                        "the empty-folder note")
        assert "No model found" in note and "kerasbrain demo" in note
        assert css(browser, "#train-demo")[0].is_displayed()
        screenshot(browser, "app_empty")
