"""The studio's API against a real server (uvicorn on a free loopback port, httpx): upload, job,
live events, result, preview; bad input; uploads cut off or stalled; tokens; a server killed
mid-job and started again."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import VS_SR, ffmpeg, small_disk, wait_until
from studio_server import Studio, make_upload, processes_of, running_studio

from vs_sr.children import alive
from vs_sr.media.probe import count_frames, probe
from vs_sr.studio.context import in_field_names

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh


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
    assert any(m["name"] == "faithful" and m["objective"] == "fidelity" and m["installed"] for m in models)
    assert "weights" not in models[0] and str(Path.home()) not in json.dumps(models)  # no server paths
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
    head = client.head(f"/api/jobs/{job['id']}/result")  # (download managers ask first)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(response.content) and not head.content
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
    whole = tmp_path / "whole.mkv"  # Matroska cut short still opens: what decodes is less than it declares
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(upload_clip), "-c", "copy", str(whole)], check=True)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    for path, status, reason in [(text, 422, "this is not a video we can read"),
                                 (empty, 422, "the file is empty"),
                                 (large, 413, "larger than the server's limit of 2 MB"),
                                 (cut, 422, "cut.mkv is incomplete or damaged: its container declares 50 frames")]:
        response = upload(client, path)
        assert response.status_code == status and reason in response.json()["detail"], response.text
        assert str(studio.data) not in response.json()["detail"]  # no server path in the reason
    assert not list((studio.data / "videos").iterdir())
    long_name = upload(client, upload_clip, name="a" * 300 + ".mp4").json()
    assert len(long_name["name"]) == 200 and long_name["name"].endswith("a….mp4")
    sneaky = upload(client, upload_clip, name="../../x.mkv").json()
    assert sneaky["name"] == "../../x.mkv"  # display text only
    stored = list((studio.data / "videos").rglob("*"))
    assert all(studio.data / "videos" in p.parents for p in stored) and not (studio.data.parent / "x.mkv").exists()


def test_a_body_shorter_than_its_file_is_said_to_be_cut_off(studio, upload_clip):
    """A Content-Length that ends the body inside the file (a client's bug): the upload is refused
    as cut off, not as "not a video", and nothing is kept."""
    boundary = "vs-sr-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + upload_clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    host, port = studio.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as connection:
        connection.sendall(f"POST /api/videos HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                           f"boundary={boundary}\r\nContent-Length: {len(body) - 1000}\r\nConnection: close\r\n"
                           "\r\n".encode() + body[:len(body) - 1000])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b"before its closing multipart boundary" in content
    assert not list((studio.data / "videos").iterdir())


def test_a_forms_other_fields_are_passed_over_and_a_body_that_is_not_multipart_is_a_400(studio, upload_clip):
    """A form (or an SDK) that sends text fields after the file failed with a 500 ("write to closed
    file"); so did a body that breaks multipart's syntax."""
    client = studio.client()
    boundary = "vs-sr-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + upload_clip.read_bytes() + \
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nfrom the form\r\n" \
        f"--{boundary}--\r\n".encode()
    answer = client.post("/api/videos", content=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 200 and answer.json()["frames"] == 50, answer.text
    with open(upload_clip, "rb") as one, open(upload_clip, "rb") as two:
        answer = client.post("/api/videos", files=[("file", ("a.mp4", one, "video/mp4")),
                                                   ("file", ("b.mp4", two, "video/mp4"))])
    assert answer.status_code == 422 and answer.json()["detail"] == "the upload has 2 'file' fields: send one video " \
        "per upload.", answer.text
    answer = client.post("/api/videos", content=b"not a boundary at all\r\n",
                         headers={"Content-Type": "multipart/form-data; boundary=XX"})
    assert answer.status_code == 400 and answer.json()["detail"].startswith("the body is not valid multipart/form-data")
    assert [v["name"] for v in client.get("/api/videos").json()] == ["clip.mp4"]
    assert len(list((studio.data / "videos").iterdir())) == 1  # the refused ones left nothing


def test_an_interlaced_upload_is_deinterlaced_by_default(studio, tmp_path):
    """The job failed asking for the command line's --deinterlace, which the API did not have."""
    source = tmp_path / "broadcast.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=50", "-frames:v", "20",
                    "-vf", "interlace", "-c:v", "libx264", "-flags", "+ildct+ilme", str(source)], check=True)
    client = studio.client()
    video = upload(client, source).json()
    job = client.post("/api/jobs", json={"video": video["id"], "model": "faithful", "scale": 2}).json()
    assert job["deinterlace"] == "bwdif"
    preview = client.get(f"/api/videos/{video['id']}/preview", params={"model": "faithful", "scale": 2, "frame": 1})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"  # (it was a 500)
    finished = events(client, job["id"])[-1]
    assert finished["state"] == "done" and finished["frames_done"] == video["frames"], finished
    answer = client.post("/api/jobs", json={"video": video["id"], "model": "faithful", "scale": 2,
                                           "deinterlace": "yadif"})
    assert answer.status_code == 422 and "deinterlace: Input should be 'bwdif' or 'progressive'" in answer.text


def test_unknown_ids_and_wrong_requests(studio):
    client = studio.client()
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert client.get("/api/jobs/../../etc").status_code == 404
    assert client.delete("/api/videos/0123456789abcdef").status_code == 404
    assert client.get("/api/videos/nothing/preview").status_code == 404
    answer = client.post("/api/jobs", json={"video": "0123456789abcdef", "model": "realesr-animevideov3", "scale": 4})
    assert answer.status_code == 404 and "no video" in answer.json()["detail"]
    # The page, mounted at /, answered these as a missing file: a 404 without a word.
    assert client.head("/api/health").status_code == 200  # (load balancers' checks)
    answer = client.get("/api/jobs/0123456789abcdef/cancel")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json()["detail"] == "/api/jobs/0123456789abcdef/cancel takes POST, not GET."
    answer = client.get("/api/jobs/", follow_redirects=False)  # a trailing slash, as Starlette answers it
    assert answer.status_code == 307 and answer.headers["location"].endswith("/api/jobs")
    answer = client.get("/api/nothing")
    assert answer.status_code == 404 and answer.json()["detail"] == "no API route /api/nothing; the routes are " \
        "listed at /docs."


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


def test_deleting_a_previewed_video_frees_its_space(studio, upload_clip):
    """A preview's filter graph held the file open: deleted, it kept its space until four other
    previews pushed the graph out, or the server stopped."""
    client = studio.client()
    video = upload(client, upload_clip).json()
    folder = studio.data / "videos" / video["id"]
    preview = client.get(f"/api/videos/{video['id']}/preview", params={"frame": 0, "model": "realesr-animevideov3",
                                                                         "scale": 4})
    assert preview.status_code == 200, preview.text

    def held() -> list[str]:
        links = []
        for fd in Path(f"/proc/{studio.process.pid}/fd").iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:  # closed meanwhile
                continue
        return [link for link in links if link.startswith(str(folder))]

    assert held()  # the graph reads the source (else this test would prove nothing)
    assert client.delete(f"/api/videos/{video['id']}").json() == {"deleted": True}
    assert held() == []


def test_a_full_disk_is_a_507_a_job_says_it_and_is_retried_and_delete_frees_it(ncnn_models, upload_clip, tmp_path):
    """The studio's data on a 64 MB disk: a job that does not fit fails saying so in the API's words
    (no server path, no command to rerun), and is retried once there is room; an upload to a full
    disk is a 507; deleting a video on a full disk works and frees its space."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with small_disk(disk, 64) as small, \
            running_studio(disk / "data", "--max-upload-mb", "2", prefix=small.command()) as studio:
        client = studio.client()
        video = upload(client, upload_clip).json()
        filler = small.fill(leave=2**20)
        job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4,
                                             "codec": "ffv1"}).json()
        failed = events(client, job["id"])[-1]
        assert failed["state"] == "failed" and failed["error"].startswith("the server's disk is full: delete the "
                                                                          "videos and jobs you no longer need"), failed
        assert "POST /api/jobs/ID/retry" in failed["error"] and str(disk) not in failed["error"]
        # The log says it too, for the operator: in the words that name the server's folder.
        small.fill()  # (the same filler, grown to the end)
        refused = upload(client, upload_clip)
        assert refused.status_code == 507 and refused.json()["detail"].startswith("the server's disk is full")
        filler.unlink()
        assert client.post(f"/api/jobs/{job['id']}/retry").json()["state"] == "queued"
        finished = events(client, job["id"])[-1]
        assert finished["state"] == "done", finished["error"]
        assert client.post(f"/api/jobs/{job['id']}/retry").status_code == 409  # done: nothing to retry
        small.fill()
        assert client.delete(f"/api/videos/{video['id']}").json() == {"deleted": True}
        assert not small.outside(disk / "data" / "videos" / video["id"]).exists()
        assert not small.outside(disk / "data" / "jobs" / job["id"]).exists()
        log = "\n".join(stopped_log(studio))
        assert f"job {job['id']} failed: " in log and str(disk / "data") in log, log


def test_misspelt_fields_wrong_types_and_sizes_a_job_would_refuse_are_422_at_once(studio, upload_clip):
    client = studio.client()
    video = upload(client, upload_clip).json()["id"]
    for fields, reason in [({"heigth": 480}, "heigth: Extra inputs are not permitted."),
                           ({"scale": True}, "scale: Input should be a valid integer."),
                           ({"width": 17}, "YUV420P8 needs width= a multiple of 2 and height= a multiple of 2; got "
                                           "17x10: pass width=16 or width=18.")]:
        answer = client.post("/api/jobs", json={"video": video, "model": "realesr-animevideov3", "scale": 4, **fields})
        assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text
    assert client.get("/api/jobs").json() == []
    # A body that is not a JSON object says what to send ("1: JSON decode error" did not)
    answer = client.post("/api/jobs", content=b"{", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("the body is not valid JSON (")
    answer = client.post("/api/jobs", content=b'{"video": "x"}')  # no Content-Type
    assert answer.status_code == 422 and answer.json()["detail"].startswith("send the fields as a JSON object")


def test_a_refusal_names_the_apis_fields_not_the_command_lines_options():
    """(It dropped the dashes: "num-streams", a field no client can send.)"""
    said = "a 9000x9000 output needs 3 GiB; choose a smaller --width/--height (or fewer --num-streams)."
    assert in_field_names(said) == "a 9000x9000 output needs 3 GiB; choose a smaller width/height (or fewer " \
                                   "num_streams)."


def test_cancel_stops_the_job_and_its_tools(studio, upload_clip):
    client = studio.client()
    video = upload(client, upload_clip).json()
    job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4}).json()
    wait_until(lambda: client.get(f"/api/jobs/{job['id']}").json()["frames_done"] > 0, 600, "a frame done")
    answer = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert answer["state"] == "cancelled"
    assert not [p for p in processes_of(studio.process.pid)
                if b"vspipe" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0]]



def test_the_announced_url_takes_connections_at_once(tmp_path, spawn):
    """A script that connects as soon as it reads the URL line is not refused."""
    studio = spawn([VS_SR, "studio", "--port", "0", "--data", str(tmp_path / "data")], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)
    match = re.search(r"http://([\d.]+):(\d+)/", studio.stdout.readline())
    assert match, studio.stderr.read()
    socket.create_connection((match.group(1), int(match.group(2))), timeout=60).close()
    studio.send_signal(signal.SIGTERM)
    studio.communicate(timeout=120)

def test_a_non_loopback_host_needs_a_token(tmp_path):
    from conftest import vs_sr

    done = vs_sr("studio", "--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path / "data"), timeout=60)
    assert done.returncode == 1 and "pass --token TOKEN" in done.stderr


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path):
    from conftest import vs_sr

    done = vs_sr("studio", "--port", "0", "--data", "/proc/vs-sr-studio", timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("vs-sr: error: cannot make the studio's data folder /proc/vs-sr-studio: No such file or "
                           "directory; pass a writable --data folder.\n")


def test_with_a_token_every_call_needs_it(ncnn_models, tmp_path, upload_clip):
    secret = "s3cret-0123456789abcdef"
    with running_studio(tmp_path / "data", "--token", secret) as server:
        assert server.client().get("/api/health").status_code == 200  # the health check stays open
        assert server.client().get("/api/jobs").status_code == 401
        assert server.client("wrong").get("/api/models").status_code == 401
        assert server.client(secret).get("/api/models").status_code == 200
        assert upload(server.client(), upload_clip).status_code == 401
        assert not (tmp_path / "data" / "videos").exists() or not list((tmp_path / "data" / "videos").iterdir())
        assert httpx.get(f"{server.url}/api/jobs", params={"access_token": secret}).status_code == 200
        lower = httpx.get(f"{server.url}/api/jobs", headers={"Authorization": f"bearer {secret}"})
        assert lower.status_code == 200  # (an authentication scheme's name is case-blind: RFC 9110)
        # What the server's machine runs, without where its files lie
        info = server.client(secret).get("/api/info").json()
        assert info["vspipe"] == "works" and "ffmpeg" in info["tools"]
        assert not [part for part in (str(Path.home()), sys.prefix, "/usr/bin") if part in json.dumps(info)]


@pytest.mark.parametrize("token", ["s3cret", " ", "0123456789abcdef "])
def test_a_short_or_blank_token_is_refused(tmp_path, token):
    from conftest import vs_sr

    done = vs_sr("studio", "--host", "0.0.0.0", "--port", "0", "--token", token, "--data", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "--token: a token of 16 characters or more, without spaces at its ends" in \
        done.stderr, done.stderr


def test_a_server_killed_mid_job_finishes_it_after_a_restart(ncnn_models, tmp_path, upload_clip):
    data = tmp_path / "data"
    with running_studio(data, "--max-upload-mb", "2") as first:
        client = first.client()
        video = upload(client, upload_clip).json()
        job = client.post("/api/jobs", json={"video": video["id"], "model": "realesr-animevideov3", "scale": 4}).json()
        wait_until(lambda: client.get(f"/api/jobs/{job['id']}").json()["frames_done"] >= 5, 600, "5 frames done")
        children = processes_of(first.process.pid)
        first.stop(signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in children), 60, "its chunk's tools to die with it")
    with running_studio(data, "--max-upload-mb", "2") as second:
        final = events(second.client(), job["id"])[-1]
        assert final["state"] == "done" and final["frames_done"] == 50
        assert second.client().get(f"/api/jobs/{job['id']}/result").status_code == 200
        assert "1 unfinished job(s) from the last run are queued again" in "\n".join(stopped_log(second))


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


def partial_upload(url: str) -> socket.socket:
    """A raw connection that sends an upload's headers and its first 5000 bytes of a declared MB."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=300)
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n")
    connection.sendall(b"POST /api/videos HTTP/1.1\r\nHost: studio\r\nContent-Length: 1048576\r\n"
                       b"Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n" + head + b"x" * 5000)
    return connection


def receiving(data: Path) -> list[Path]:
    """The files uploads are being written to now."""
    return list((data / "videos").glob("*/source.*"))


def stopped_log(server: Studio) -> list[str]:
    server.stop()
    assert server.process.stderr is not None
    return server.process.stderr.read().splitlines()


def test_an_upload_cut_off_by_the_client_is_one_log_line_and_leaves_nothing(tmp_path):
    with running_studio(tmp_path / "data", "--upload-timeout", "600") as server:
        connection = partial_upload(server.url)
        wait_until(lambda: receiving(server.data), 120, "the upload to arrive")
        connection.close()
        wait_until(lambda: not list((server.data / "videos").iterdir()), 120, "the partial upload to be removed")
        log = stopped_log(server)
    assert not [line for line in log if "Traceback" in line or "ClientDisconnect" in line], log
    lines = [line for line in log if "upload" in line]
    assert len(lines) == 1, log
    assert re.fullmatch(r"WARNING:  upload from 127\.0\.0\.1:\d+ not received: the upload was cut off by the "
                        r"client after \d+ bytes\.", lines[0]), lines



def test_an_upload_in_progress_when_the_studio_is_killed_is_removed_by_the_next_start(tmp_path):
    data = tmp_path / "data"
    with running_studio(data, "--upload-timeout", "600") as first:
        connection = partial_upload(first.url)
        wait_until(lambda: receiving(data), 120, "the upload to arrive")
        first.stop(signal.SIGKILL)
        connection.close()
    assert receiving(data)  # a killed studio cannot clean up
    with running_studio(data) as second:
        assert second.client().get("/api/videos").json() == []
        assert list((data / "videos").iterdir()) == []

def test_a_stop_during_an_upload_answers_it_503_at_once_without_a_traceback(tmp_path):
    """The stop waited its 5 s of grace, then cut the upload: a 500 and 60 lines of traceback."""
    with running_studio(tmp_path / "data", "--upload-timeout", "600") as server:
        connection = partial_upload(server.url)
        wait_until(lambda: receiving(server.data), 120, "the upload to arrive")
        server.process.send_signal(signal.SIGTERM)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        connection.close()
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert re.search(rb"the server is stopping \(\d+ bytes had arrived\): send the file again once it is back\.",
                         answer), answer
        log = stopped_log(server)
    assert not [line for line in log if "Traceback" in line or "ERROR" in line], log
    assert list((tmp_path / "data" / "videos").iterdir()) == []


def test_an_upload_whose_client_left_while_it_was_read_is_not_kept(tmp_path):
    """A proxy that gave up waiting for the answer (the whole video is decoded first): its client
    sends the file again, and the first copy was kept beside it."""
    clip = tmp_path / "long.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=60", "-c:v", "libx264", "-preset",
           "ultrafast", str(clip))
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="long.mkv"\r\n'
            b"Content-Type: video/x-matroska\r\n\r\n" + clip.read_bytes() + b"\r\n--XyZ--\r\n")
    with running_studio(tmp_path / "data") as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=300) as connection:
            connection.sendall(b"POST /api/videos HTTP/1.1\r\nHost: studio\r\nContent-Type: multipart/form-data; "
                               b"boundary=XyZ\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            size = clip.stat().st_size
            wait_until(lambda: [f for f in receiving(server.data) if f.stat().st_size == size], 300, "all of it")
        wait_until(lambda: not list((server.data / "videos").iterdir()), 300, "the upload to be discarded")
        assert server.client().get("/api/videos").json() == []
        log = stopped_log(server)
    assert [line for line in log if "upload" in line] == [
        line for line in log if "not received: the client went away while the video was being read" in line] != []


def test_an_upload_that_stops_arriving_is_given_up_with_408(tmp_path):
    with running_studio(tmp_path / "data", "--upload-timeout", "1") as server:
        connection = partial_upload(server.url)
        answer = b""
        while chunk := connection.recv(65536):  # the server answers, then closes
            answer += chunk
        connection.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert re.search(rb"no data arrived for 1 s after \d+ bytes, so the upload was given up: send the file again",
                         answer), answer
        wait_until(lambda: not list((server.data / "videos").iterdir()), 120, "the partial upload to be removed")
        log = stopped_log(server)
    assert len([line for line in log if "upload" in line]) == 1 and not [line for line in log if "Traceback" in line], log


def test_the_preview_takes_only_what_a_job_takes(studio, upload_clip, tmp_path):
    """No server path as model= (and nothing said about whether the file exists), only scales that
    exist, sizes a job may have; the same answers as POST /api/jobs."""
    client = studio.client()
    video = upload(client, upload_clip).json()["id"]
    existing = tmp_path / "weights.pth"
    existing.write_bytes(b"not a network")
    answers = {}
    for model in (str(existing), str(tmp_path / "missing.pth"), "/etc/passwd", "../studio.db"):
        preview = client.get(f"/api/videos/{video}/preview", params={"model": model, "scale": 4})
        job = client.post("/api/jobs", json={"video": video, "model": model, "scale": 4})
        assert preview.status_code == job.status_code == 422, preview.text
        assert preview.json()["detail"] == job.json()["detail"]
        answers[model] = preview.json()["detail"].replace(repr(model), "MODEL")
    assert len(set(answers.values())) == 1, answers  # an existing file reads like a missing one
    assert "unknown model MODEL: name one of the models listed at /api/models." in answers.values()
    for params, reason in [({"scale": 3}, "model 'realesr-animevideov3' has no x3 network (it has x4)"),
                           ({"model": "hat", "scale": 4}, "model 'hat' x4 is not installed on this server"),
                           ({"height": 100_000}, "less than or equal to 8192"), ({"scale": 0}, "greater than or equal to 1")]:
        answer = client.get(f"/api/videos/{video}/preview", params={"model": "realesr-animevideov3", **params})
        assert answer.status_code == 422 and reason in answer.text, answer.text
        assert os.environ["VS_SR_MODEL_DIR"] not in answer.text  # where weights are looked for stays unsaid
    # width= as a job takes it (the hint for other sizes names it; the preview had only height=)
    answer = client.get(f"/api/videos/{video}/preview", params={"model": "faithful", "scale": 2, "width": 320,
                                                                 "frame": 3})
    assert answer.status_code == 200 and answer.content[16:24] == (640).to_bytes(4, "big") + (180).to_bytes(4, "big")


def slow_job(client: httpx.Client, video_id: str) -> dict:
    """A job that runs for minutes here (the big GAN, x4): what a test stops while it runs."""
    return client.post("/api/jobs", json={"video": video_id, "model": "realesrgan-x4plus", "scale": 4}).json()


def test_one_studio_per_data_folder(studio):
    from conftest import vs_sr

    done = vs_sr("studio", "--port", "0", "--data", str(studio.data), timeout=60)
    assert done.returncode == 1
    assert done.stderr == f"vs-sr: error: another vs-sr studio serves {studio.data}; stop it first, or pass another " \
                          "--data folder.\n"
    assert studio.client().get("/api/health").status_code == 200  # the first one is untouched


def test_a_stop_ends_open_event_streams_and_the_running_job(studio, upload_clip):
    """A client following a running job held the server (and the job) up after SIGTERM, for as long
    as it kept the stream open."""
    client = studio.client()
    job = slow_job(client, upload(client, upload_clip).json()["id"])
    wait_until(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] == "running", 600, "the job to run")
    follower = threading.Thread(target=lambda: _follow_until_cut(studio, job["id"]), daemon=True)
    follower.start()
    wait_until(lambda: client.get(f"/api/jobs/{job['id']}").json()["frames_total"] > 0, 600, "the job's numbers")
    assert follower.is_alive()  # still streaming: the job runs for minutes
    children = processes_of(studio.process.pid)
    studio.process.send_signal(signal.SIGTERM)
    studio.process.wait(timeout=120)  # (it waited for the stream to end; the fixture kills it after 120 s)
    follower.join(timeout=60)
    assert not follower.is_alive()
    assert studio.process.stderr is not None and "Traceback" not in studio.process.stderr.read()  # ended, not cut
    wait_until(lambda: not any(alive(pid) for pid in children), 60, "the job's tools to end with the server")


def _follow_until_cut(studio: Studio, job_id: str) -> None:
    try:
        events(studio.client(), job_id)
    except httpx.HTTPError:  # the server ended the stream as it stopped
        pass


def test_max_queued_counts_the_jobs_waiting_not_the_one_running(ncnn_models, tmp_path, upload_clip):
    with running_studio(tmp_path / "data", "--max-queued", "1") as server:
        client = server.client()
        video = upload(client, upload_clip).json()["id"]
        running = slow_job(client, video)
        wait_until(lambda: client.get(f"/api/jobs/{running['id']}").json()["state"] == "running", 600, "a job to run")
        # Requests arriving together: each counted the queue before any was recorded (14 of 15 got in).
        answers: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: answers.append(server.client().post(
            "/api/jobs", json={"video": video, "model": "faithful", "scale": 2}))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [200] + [429] * 7
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["detail"].startswith("1 job is waiting already")
        waiting = next(a for a in answers if a.status_code == 200).json()
        assert client.post(f"/api/jobs/{waiting['id']}/cancel").json()["state"] == "cancelled"
        assert client.post("/api/jobs", json={"video": video, "model": "faithful", "scale": 2}).status_code == 200
        assert client.post(f"/api/jobs/{waiting['id']}/retry").status_code == 429  # the queue is full again


def test_a_name_with_quotes_is_the_users_and_a_lost_file_is_named_without_its_path(studio, upload_clip):
    client = studio.client()
    name = 'my "holiday" ünï 動画.mp4'
    video = upload(client, upload_clip, name).json()
    assert video["name"] == name  # (browsers and httpx send '"' as %22)
    (next((studio.data / "videos" / video["id"]).glob("source.*"))).unlink()
    answer = client.post("/api/jobs", json={"video": video["id"], "model": "faithful", "scale": 2})
    assert answer.status_code == 409 and str(studio.data) not in answer.text
    assert answer.json()["detail"] == f"the file of video {video['id']} ({name}) is gone from the server: delete the " \
                                      "video and upload it again."


def test_a_full_disk_met_by_the_batch_state_is_said_in_the_apis_words():
    """The batch state's own words for a full disk ("no space left to write ...; run the same command
    again") reached the client: a command it never ran."""
    import sqlite3

    from vs_sr.batch.state import state_error
    from vs_sr.studio.job_queue import for_client

    error = state_error(Path("/srv/studio/jobs/0123456789abcdef/.vs-sr-batch/state.db"),
                        sqlite3.OperationalError("database or disk is full"))
    said = for_client(error.message)
    assert said.startswith("the server's disk is full") and "POST /api/jobs/ID/retry" in said and "/srv" not in said


def test_a_long_video_is_made_in_chunks_of_about_2_percent():
    """A restart loses only the chunks in flight: one chunk per worker lost a whole 2-hour video."""
    from vs_sr.studio.job_queue import chunk_frames

    assert chunk_frames(180_000, 1) == 3600 and chunk_frames(180_000, 2) == 3600
    assert chunk_frames(50, 2) == 250 and chunk_frames(20_000, 1) == 400


def test_a_stop_starts_no_waiting_job(ncnn_models, tmp_path, upload_clip):
    """The worker took the next waiting job as the running one stopped, and the stop waited for it
    (a fast job was even made in full while the server stopped)."""
    data = tmp_path / "data"
    with running_studio(data) as studio:
        client = studio.client()
        video = upload(client, upload_clip).json()["id"]
        running = slow_job(client, video)
        waiting = client.post("/api/jobs", json={"video": video, "model": "faithful", "scale": 2}).json()
        wait_until(lambda: client.get(f"/api/jobs/{running['id']}").json()["state"] == "running", 600, "a job to run")
        studio.stop(signal.SIGTERM)
    assert not (data / "jobs" / waiting["id"] / "source.mkv").exists()
    with running_studio(data) as again:  # the next start continues the first job; the other still waits
        states = {job["id"]: job["state"] for job in again.client().get("/api/jobs").json()}
        assert states[waiting["id"]] == "queued" and states[running["id"]] in ("queued", "running")


def test_a_download_of_a_long_named_upload_gets_a_name_a_file_system_takes(studio, upload_clip):
    client = studio.client()
    video = upload(client, upload_clip, "é" * 125 + ".mp4").json()  # the suffix made it 263 bytes
    job = client.post("/api/jobs", json={"video": video["id"], "model": "faithful", "scale": 2}).json()
    assert events(client, job["id"])[-1]["state"] == "done"
    disposition = client.head(f"/api/jobs/{job['id']}/result").headers["content-disposition"]
    name = urllib.parse.unquote(disposition.split("filename*=utf-8''")[1])
    assert name.startswith("é" * 50) and name.endswith("-upscaled.mkv") and len(name.encode()) <= 255


def test_the_pages_token_cookie_reads_only_whatever_the_tokens_characters_and_ports(ncnn_models, tmp_path):
    """The page percent-encodes its cookie (a base64 token got 401 on every preview and download), and
    names it by its port: cookies are shared by a host's ports, so two studios overwrote each other's."""
    secret = "AbCd+EfGh/IjKl=MnOp==é"
    with running_studio(tmp_path / "data", "--token", secret, "--log-level", "info") as server:
        cookies = {"vs_sr_token_9999": urllib.parse.quote("another studio's token"),
                   "vs_sr_token_8008": urllib.parse.quote(secret, safe="")}
        assert httpx.get(f"{server.url}/api/jobs", cookies=cookies).status_code == 200
        assert httpx.post(f"{server.url}/api/jobs", cookies=cookies, json={}).status_code == 401  # (reading only)
        assert httpx.get(f"{server.url}/api/jobs", cookies={"vs_sr_token_8008": "wrong"}).status_code == 401
        assert httpx.get(f"{server.url}/api/jobs", params={"access_token": secret}).status_code == 200
        server.stop()
        assert server.process.stdout is not None
        requests = server.process.stdout.read()  # (uvicorn's request lines go to stdout)
    assert "GET /api/jobs?access_token=*** HTTP/1.1" in requests and "MnOp" not in requests
