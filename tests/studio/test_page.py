"""The studio page in a real browser (Debian's chromium driven by Playwright): upload through the
page, start a job, watch its bar reach 100%, check the before/after preview and the download link,
and save the README's screenshot (docs/studio.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from studio_server import make_upload, running_studio

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "studio.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    with sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_a_person_upscales_a_video_through_the_page(ncnn_models, browser, tmp_path):
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data", "--jobs", "2") as studio:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(studio.url + "/")
        page.set_input_files("#file", str(clip))
        page.click("#upload-button")
        page.wait_for_selector("text=uploaded: holiday 144p.mp4, 256x144, 50 frames", timeout=120_000)
        page.select_option("#size", "height:480")
        page.fill("#frame", "25")
        page.dispatch_event("#frame", "input")
        page.click("#start-button")
        page.wait_for_selector("#jobs .bar .label:has-text('done: 50/50 frames (100%)')", timeout=600_000)
        preview = page.wait_for_function(
            "() => { const i = document.getElementById('preview'); return i.complete && i.naturalWidth > 0 && i; }",
            timeout=120_000)
        assert preview.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [2 * 854, 480]
        link = page.get_attribute("#jobs a.download", "href")
        assert link is not None and link.endswith("/result")
        with page.expect_download() as download:
            page.click("#jobs a.download")
        assert download.value.suggested_filename == "holiday 144p-upscaled.mkv"
        assert page.is_hidden("#message")  # no error shown
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
