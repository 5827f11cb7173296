"""The studio behind a real reverse proxy (Debian's nginx, on loopback, started by the test): under a
path of a site, with a token, in a real browser; its event streams arrive as they are sent, and a
quiet one is kept open; redirects stay under the proxy's path."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import wait_until
from studio_server import make_upload, running_studio

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOKEN = "proxy-token-0123456789"
CONFIG = """
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {folder}/access.log;
  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fcgi; uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
  client_max_body_size 100m;
  server {{
    listen 127.0.0.1:{port};
    location = / {{ return 200 "the site's own page\\n"; }}
    location /studio/ {{ proxy_pass {upstream}/; }}
  }}
}}
"""


@contextmanager
def nginx(folder: Path, upstream: str) -> Iterator[str]:
    """nginx serving the studio at `upstream` under /studio/ of a site; the site's URL."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (scripts/setup.sh --test installs nginx-light where that starts no "
                    "service)")
    folder.mkdir()
    with socket.socket() as probe:  # (nginx cannot listen on port 0 and say which it got)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user = "user root;" if os.geteuid() == 0 else ""  # (its workers, www-data otherwise, could not reach the folder)
    (folder / "nginx.conf").write_text(CONFIG.format(user=user, folder=folder, port=port, upstream=upstream))
    process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e",
                                str(folder / "error.log"), "-g", "daemon off;"], stdin=subprocess.DEVNULL)
    site = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _answers(site), 60, "nginx to listen")
        assert process.poll() is None, (folder / "error.log").read_text()
        yield site
    finally:
        process.send_signal(signal.SIGQUIT)  # (its graceful stop)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(site: str) -> bool:
    try:
        return httpx.get(site + "/", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_page_works_under_a_path_of_a_site_with_a_token_that_stays_out_of_urls(ncnn_models, browser, tmp_path):
    """Every call of the page went to the site's /api/ (404: "the studio server does not answer"), and
    its preview and download URLs carried the token into the proxy's log."""
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data", "--token", TOKEN, "--root-path", "/studio") as studio, \
            nginx(tmp_path / "nginx", studio.url) as site:
        page = browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept(TOKEN))
        page.goto(site + "/studio/")
        page.set_input_files("#file", str(clip))
        page.click("#upload-button")
        page.wait_for_selector("text=uploaded: holiday 144p.mp4", timeout=120_000)
        page.select_option("#model", "faithful")
        page.select_option("#size", "scale:2")
        page.click("#start-button")
        page.wait_for_selector("#jobs .bar .label:has-text('done: 50/50 frames (100%)')", timeout=600_000)
        page.wait_for_function("() => { const i = document.getElementById('preview'); return i.complete && "
                               "i.naturalWidth > 0; }", timeout=120_000)
        with page.expect_download() as download:
            page.click("#jobs a.download")
        assert download.value.suggested_filename == "holiday 144p-upscaled.mkv"
        assert page.is_hidden("#message")
        page.close()
        docs = httpx.get(site + "/studio/docs")
        assert "'/studio/openapi.json'" in docs.text and httpx.get(site + "/studio/openapi.json").status_code == 200
        redirect = httpx.get(site + "/studio/api/jobs/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert redirect.status_code == 307 and redirect.headers["location"] == "/studio/api/jobs"
        studio.stop()
    logged = (tmp_path / "nginx" / "access.log").read_text()
    assert "/studio/api/jobs?limit=" in logged and "/result " in logged and "/preview?" in logged
    assert TOKEN not in logged


def test_events_come_through_a_proxy_as_they_are_sent_and_a_quiet_stream_stays_open(ncnn_models, tmp_path):
    clip = make_upload(tmp_path)
    with running_studio(tmp_path / "data") as studio, nginx(tmp_path / "nginx", studio.url) as site:
        client = httpx.Client(base_url=site + "/studio", timeout=120)
        with open(clip, "rb") as handle:
            video = client.post("/api/videos", files={"file": (clip.name, handle, "video/mp4")}).json()["id"]
        slow = client.post("/api/jobs", json={"video": video, "model": "realesrgan-x4plus", "scale": 4}).json()
        waiting = client.post("/api/jobs", json={"video": video, "model": "faithful", "scale": 2}).json()
        with client.stream("GET", f"/api/jobs/{waiting['id']}/events") as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line)  # through nginx's buffer: only at the stream's end
            assert first.startswith("data: ") and '"state": "queued"' in first
            # nginx ends a stream silent for 60 s (and the job waits minutes): a comment keeps it open
            assert next(line for line in lines if line) == ": waiting"
        for job in (waiting, slow):
            client.post(f"/api/jobs/{job['id']}/cancel")
