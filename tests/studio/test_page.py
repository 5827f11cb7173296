"""The studio page in a real browser (Debian's chromium driven by Playwright): upload through the
page, start a job, watch its bar reach 100% (a progressbar assistive technology can read), check
the before/after preview and the download link, take the README's screenshot (into the test's
temporary folder; with VS_SR_UPDATE_SCREENSHOT=1 it also replaces docs/studio.png: tests do not
write into the repository otherwise); a very long file name stays inside its cards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import wait_until
from studio_server import make_upload, running_studio

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "studio.png"


def upload_through(page, clip: Path, shown: str) -> None:
    """Upload `clip` with the page's file input and button, until its bar says "uploaded: SHOWN"."""
    page.set_input_files("#file", str(clip))
    page.click("#upload-button")
    page.wait_for_selector(f"text=uploaded: {shown}", timeout=120_000)
    # Chosen once it says so (it said so first: a Start at once sent no video, on a busy machine)
    assert page.eval_on_selector("#video", "select => select.selectedOptions[0]?.title").startswith(shown.split(",")[0])


def test_a_person_upscales_a_video_through_the_page(ncnn_models, browser, tmp_path):
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data", "--jobs", "2") as studio:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(studio.url + "/")
        upload_through(page, clip, "holiday 144p.mp4, 256x144, 50 frames")
        labels = page.eval_on_selector_all("#model option", "options => options.map(o => o.textContent)")
        assert "faithful (fidelity)" in labels and "realesr-animevideov3 (generative)" in labels
        page.select_option("#size", "height:480")
        page.fill("#frame", "25")
        page.dispatch_event("#frame", "input")
        page.click("#start-button")
        page.wait_for_selector("#jobs .bar .label:has-text('done: 50/50 frames (100%)')", timeout=600_000)
        job_bar = page.get_by_role("progressbar", name="progress of holiday 144p.mp4 → 480p with realesr-animevideov3")
        assert progress(job_bar) == ("50", "0", "50", "done: 50/50 frames (100%)")
        upload_bar = page.get_by_role("progressbar", name="upload progress")
        now, low, high, text = progress(upload_bar)
        assert now == high and low == "0" and text.startswith("uploaded: holiday 144p.mp4")
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
        shot = tmp_path / "studio.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("VS_SR_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)


def progress(bar) -> tuple[str | None, ...]:
    """What assistive technology reads of a progressbar: its value, range and words."""
    return tuple(bar.get_attribute(f"aria-{name}") for name in ("valuenow", "valuemin", "valuemax", "valuetext"))


def overflowing(page) -> list[str]:
    """The cards (and the page) whose content is wider than they are."""
    return page.evaluate("""() => [document.documentElement, ...document.querySelectorAll('section, li')]
        .filter((e) => e.scrollWidth > e.clientWidth).map((e) => e.id || e.tagName)""")


def test_a_very_long_file_name_stays_inside_its_cards(ncnn_models, browser, tmp_path):
    name = "a-very-long-recording-name-" + "without-any-break-" * 9 + "end.mp4"
    clip = make_upload(tmp_path).rename(tmp_path / name)
    with running_studio(tmp_path / "data") as studio:
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        page.goto(studio.url + "/")
        upload_through(page, clip, "a-very-long-recording-name")
        page.click("#start-button")
        page.wait_for_selector("#jobs li .bar", timeout=120_000)
        assert overflowing(page) == []
        page.set_viewport_size({"width": 360, "height": 740})  # a phone: the cards were cut off at the right
        assert overflowing(page) == []
        page.set_viewport_size({"width": 1024, "height": 900})
        assert page.get_attribute("#videos li .name", "title") == name  # the whole name on hover
        assert page.get_attribute("#jobs li .name", "title") == f"{name} → 480p with realesr-animevideov3"
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_selector("#jobs li.state-cancelled", timeout=300_000)


def test_the_page_stays_usable_with_many_jobs_and_each_model_makes_every_size(ncnn_models, browser, tmp_path):
    """Seven jobs waiting held one event stream each: past six, the browser sent nothing more (no
    upload, no job). An x2-only model asked for x4 at every size but "2x larger"; a double click
    made two jobs; a cancelled job had no Retry; a video was deleted with its jobs on one click."""
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data") as studio:
        client = studio.client()
        with open(clip, "rb") as handle:
            video = client.post("/api/videos", files={"file": (clip.name, handle, "video/mp4")}).json()
        for _ in range(7):  # the big GAN at x4: minutes each here, so all of them are waiting or running
            assert client.post("/api/jobs", json={"video": video["id"], "model": "realesrgan-x4plus",
                                                  "scale": 4}).status_code == 200
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(studio.url + "/")
        page.wait_for_selector("#jobs li:nth-child(7)", timeout=60_000)
        upload_through(page, clip, "holiday 144p.mp4")
        page.select_option("#model", "waifu2x-anime")
        page.select_option("#size", "height:480")
        page.dblclick("#start-button")
        page.wait_for_selector("#jobs li:nth-child(8)", timeout=60_000)
        newest = client.get("/api/jobs").json()[-1]
        assert len(client.get("/api/jobs").json()) == 8  # one job for the double click
        assert (newest["model"], newest["scale"], newest["height"]) == ("waifu2x-anime", 2, 480)
        assert page.is_hidden("#message")
        page.get_by_role("button", name="Cancel holiday 144p.mp4 → 480p with waifu2x-anime").click()
        page.get_by_role("button", name="Retry holiday 144p.mp4 → 480p with waifu2x-anime").click()
        wait_until(lambda: client.get(f"/api/jobs/{newest['id']}").json()["state"] in ("queued", "running"), 60,
                   "the job to be retried")
        asked: list[str] = []

        def answer(dialog, accept: bool) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", lambda dialog: answer(dialog, False))  # "no" keeps everything
        page.get_by_role("button", name="Delete holiday 144p.mp4").first.click()
        page.once("dialog", lambda dialog: answer(dialog, True))
        page.get_by_role("button", name="Delete holiday 144p.mp4").first.click()
        wait_until(lambda: len(client.get("/api/videos").json()) == 1, 120, "the video to be deleted")
        assert asked == ["Delete holiday 144p.mp4 and its 7 jobs (results included; a running job is stopped)?"] * 2
        assert len(client.get("/api/jobs").json()) == 1


def test_the_page_says_when_the_server_is_gone_and_recovers_when_it_is_back(ncnn_models, browser, tmp_path):
    """A page following a job kept showing its last numbers after the server died, and never read
    the server again once it was back (one failed reload, then nothing)."""
    import signal

    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data") as studio:
        port = studio.url.rsplit(":", 1)[1]
        client = studio.client()
        with open(clip, "rb") as handle:
            video = client.post("/api/videos", files={"file": (clip.name, handle, "video/mp4")}).json()
        job = client.post("/api/jobs", json={"video": video["id"], "model": "realesrgan-x4plus", "scale": 4}).json()
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(studio.url + "/")
        page.wait_for_selector(f"#job-{job['id']}.state-running", timeout=300_000)
        studio.stop(signal.SIGKILL)
        page.wait_for_selector("#message:has-text('The studio server does not answer')", timeout=60_000)
    with running_studio(tmp_path / "data", "--port", port):  # the killed server's lock and job are taken over
        page.wait_for_selector("#message", state="hidden", timeout=120_000)
        page.wait_for_selector(f"#job-{job['id']}.state-running", timeout=300_000)


def test_two_tabs_see_each_others_work_and_the_keyboard_keeps_its_place(ncnn_models, browser, tmp_path):
    """A job started in another tab was named by its video's id until a reload; a video deleted in
    one tab silently switched the other's choice to another video; Enter on Start lost the focus."""
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data") as studio:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        first, second = context.new_page(), context.new_page()
        for page in (first, second):
            page.goto(studio.url + "/")
            page.wait_for_selector("#model option", state="attached")
        upload_through(second, clip, "holiday 144p.mp4")
        second.select_option("#model", "faithful")
        second.select_option("#size", "scale:2")
        second.focus("#start-button")
        second.keyboard.press("Enter")
        second.wait_for_selector("#jobs li", timeout=60_000)
        second.wait_for_function("document.activeElement && document.activeElement.id === 'start-button'",
                                 timeout=60_000)  # (given back once the request is answered)
        first.wait_for_selector("#jobs li .name:text-is('holiday 144p.mp4')", timeout=60_000)
        first.once("dialog", lambda dialog: dialog.accept())
        first.get_by_role("button", name="Delete holiday 144p.mp4", exact=True).click()
        second.wait_for_selector("#message:has-text('The chosen video was deleted')", timeout=60_000)
        assert second.eval_on_selector("#video", "select => select.value") == ""
        context.close()
