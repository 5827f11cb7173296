"""The studio's API against a real server (uvicorn on a free loopback port, httpx): upload, job,
live events, result, preview; bad input; tokens; a server killed mid-job and started again."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from studio_server import Studio, make_upload, processes_of, running_studio, start_studio

from vs_sr.media.probe import count_frames, probe


@pytest.fixture(scope="module")
def upload_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_upload(tmp_path_factory.mktemp("upload"))


@pytest.fixture
def studio(ncnn_models, tmp_path) -> Iterator[Studio]:
    with running_studio(tmp_path / "data", "--max-upload-mb", "2", "--jobs", "2") as server:
        yield server


def upload(client: httpx.Client, path: Path, name: str | None = None) -> httpx.Response:
    with open(path, "rb") as handle:
        return client.post("/api/videos", files={"file": (name or path.name, handle, "video/mp4")})


def events(client: httpx.Client, job_id: str) -> list[dict]:
    seen = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
    return seen


def test_upload_job_events_result_and_preview(studio, upload_clip, tmp_path):
    client = studio.client()
    video = upload(client, upload_clip).json()
    assert {k: video[k] for k in ("name", "width", "height", "frames", "fps")} == {
        "name": "holiday 144p.mp4", "width": 256, "height": 144, "frames": 50, "fps": 25.0}
    assert abs(video["duration"] - 2.0) < 0.1
    models = client.get("/api/models").json()
    assert any(m["name"] == "realesr-animevideov3" and m["installed"] for m in models)
    job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4,
                                         "height": 480}).json()
    assert job["state"] == "queued" and job["frames_total"] == 50
    seen = events(client, job["id"])
    done = [e["frames_done"] for e in seen]
    assert seen[-1]["state"] == "done" and done[-1] == 50 == seen[-1]["frames_total"]
    assert done == sorted(done) and len(set(done)) > 2  # it rose while the job ran
    response = client.get(f"/api/jobs/{job['id']}/result")
    assert response.status_code == 200
    assert "filename*=utf-8''holiday%20144p-upscaled.mkv" in response.headers["content-disposition"]
    result = tmp_path / "result.mkv"
    result.write_bytes(response.content)
    media = probe(result)
    assert (media.video.info["width"], media.video.info["height"]) == (854, 480)  # 144p -> 480p, same shape
    assert count_frames(result) == 50 and len(media.of_kind("audio")) == 1
    preview = client.get(f"/api/videos/{video['id']}/preview", params={"frame": 30, "model": "realesr-animevideov3",
                                                                     "scale": 4, "height": 480})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(preview.content)).size == (2 * 854, 480)  # before | after


def test_bad_uploads_are_refused_and_leave_nothing(studio, upload_clip, tmp_path):
    client = studio.client()
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    large = tmp_path / "large.mkv"
    large.write_bytes(os.urandom(3 * 2**20))
    for path, status, reason in [(text, 422, "this is not a video we can read"),
                                 (empty, 422, "the file is empty"),
                                 (large, 413, "larger than the server's limit of 2 MB")]:
        response = upload(client, path)
        assert response.status_code == status and reason in response.json()["detail"], response.text
        assert str(studio.data) not in response.json()["detail"]  # no server path in the reason
    assert not list((studio.data / "videos").iterdir())
    sneaky = upload(client, upload_clip, name="../../x.mkv").json()
    assert sneaky["name"] == "../../x.mkv"  # display text only
    stored = list((studio.data / "videos").rglob("*"))
    assert all(studio.data / "videos" in p.parents for p in stored) and not (studio.data.parent / "x.mkv").exists()


def test_unknown_ids_and_wrong_requests(studio):
    client = studio.client()
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert client.get("/api/jobs/../../etc").status_code == 404
    assert client.delete("/api/videos/0123456789abcdef").status_code == 404
    assert client.get("/api/videos/nothing/preview").status_code == 404
    answer = client.post("/api/jobs", json={"video": "0123456789abcdef", "model": "realesr-animevideov3", "scale": 4})
    assert answer.status_code == 404 and "no video" in answer.json()["detail"]


def test_delete_removes_the_files(studio, upload_clip):
    client = studio.client()
    video = upload(client, upload_clip).json()
    job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4,
                                         "height": 288}).json()
    assert events(client, job["id"])[-1]["state"] == "done"
    assert client.delete(f"/api/jobs/{job['id']}").json() == {"deleted": True}
    assert not (studio.data / "jobs" / job["id"]).exists()
    assert client.delete(f"/api/videos/{video['id']}").json() == {"deleted": True}
    assert not (studio.data / "videos" / video["id"]).exists()


def test_cancel_stops_the_job_and_its_tools(studio, upload_clip):
    client = studio.client()
    video = upload(client, upload_clip).json()
    job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4}).json()
    deadline = time.monotonic() + 300
    while client.get(f"/api/jobs/{job['id']}").json()["frames_done"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    answer = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert answer["state"] == "cancelled"
    assert not [p for p in processes_of(studio.process.pid)
                if b"vspipe" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]]


def test_a_non_loopback_host_needs_a_token(tmp_path):
    from conftest import vs_sr

    done = vs_sr("studio", "--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path / "data"), timeout=60)
    assert done.returncode == 1 and "pass --token TOKEN" in done.stderr


def test_with_a_token_every_call_needs_it(ncnn_models, tmp_path, upload_clip):
    with running_studio(tmp_path / "data", "--token", "s3cret") as server:
        assert server.client().get("/api/health").status_code == 200  # the health check stays open
        assert server.client().get("/api/jobs").status_code == 401
        assert server.client("wrong").get("/api/models").status_code == 401
        assert server.client("s3cret").get("/api/models").status_code == 200
        assert upload(server.client(), upload_clip).status_code == 401
        assert not (tmp_path / "data" / "videos").exists() or not list((tmp_path / "data" / "videos").iterdir())
        assert httpx.get(f"{server.url}/api/jobs", params={"access_token": "s3cret"}).status_code == 200


def test_a_server_killed_mid_job_finishes_it_after_a_restart(ncnn_models, tmp_path, upload_clip):
    data = tmp_path / "data"
    first = start_studio(data, "--max-upload-mb", "2")
    client = first.client()
    video = upload(client, upload_clip).json()
    job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4}).json()
    deadline = time.monotonic() + 300
    while client.get(f"/api/jobs/{job['id']}").json()["frames_done"] < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    children = processes_of(first.process.pid)
    first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() and b"vspipe" in Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in children)  # its chunk's tools died with it
    with running_studio(data, "--max-upload-mb", "2") as second:
        final = events(second.client(), job["id"])[-1]
        assert final["state"] == "done" and final["frames_done"] == 50
        assert second.client().get(f"/api/jobs/{job['id']}/result").status_code == 200


def hammer_while_starting(studio: Studio, job_id: str) -> list[str]:
    """Two threads GET the job and two open its event stream, over and over, until its batch state
    exists and has been read (or the job ended); what went wrong."""
    state = studio.data / "jobs" / job_id / ".vs-sr-batch" / "state.db"
    failures: list[str] = []
    started = threading.Event()

    def poll() -> None:
        with studio.client() as mine:
            while not started.is_set():
                existed = state.exists()
                answer = mine.get(f"/api/jobs/{job_id}")
                if answer.status_code != 200:
                    failures.append(f"GET: {answer.status_code} {answer.text}")
                elif answer.json()["state"] not in ("queued", "running") or existed:
                    started.set()

    def stream() -> None:
        with studio.client() as mine:
            while not started.is_set():
                with mine.stream("GET", f"/api/jobs/{job_id}/events") as response:
                    lines = (line for line in response.iter_lines() if line.startswith("data: "))
                    if next(lines, None) is None:
                        failures.append("an event stream closed with no event")

    readers = [threading.Thread(target=poll) for _ in range(2)] + [threading.Thread(target=stream) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return failures


def test_readers_hammering_a_starting_job_never_get_an_error(studio, upload_clip):
    """GET /api/jobs/{id} and event streams from four threads while jobs start: every answer is a
    200 and every stream gives an event (a reader never meets a half-made batch state)."""
    client = studio.client()
    video = upload(client, upload_clip).json()
    for _ in range(3):
        job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4}).json()
        failures = hammer_while_starting(studio, job["id"])
        assert client.post(f"/api/jobs/{job['id']}/cancel").json()["state"] in ("cancelled", "done", "failed")
        assert not failures, failures[:3]
