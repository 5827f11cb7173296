"""`vs-sr studio --keep-days`: what ended or arrived long ago is removed with its files, at the
server's start and while it runs; what a job still needs is kept; the API's lists page; a database
from before jobs recorded when they ended is brought up to date."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from conftest import vs_sr, wait_until
from studio_server import make_upload, running_studio

from vs_sr.studio.context import Studio, StudioConfig
from vs_sr.studio.job_queue import JobQueue
from vs_sr.studio.library import Library, Video
from vs_sr.studio.previews import Previews
from vs_sr.studio.retention import DAY, Retention

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh


@pytest.fixture(scope="module")
def upload_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_upload(tmp_path_factory.mktemp("upload"))


def upload(client: httpx.Client, path: Path) -> str:
    with open(path, "rb") as handle:
        answer = client.post("/api/videos", files={"file": (path.name, handle, "video/mp4")})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def make_older(data: Path, table: str, column: str, ids: list[str], days: float) -> None:
    """What passing time does to the records of a stopped studio."""
    with sqlite3.connect(data / "studio.db") as db:
        db.executemany(f"UPDATE {table} SET {column} = {column} - ? WHERE id = ?", [(days * DAY, i) for i in ids])


def test_keep_days_removes_at_start_the_jobs_that_ended_and_the_uploads_made_long_ago(ncnn_models, tmp_path,
                                                                                      upload_clip):
    data = tmp_path / "data"
    with running_studio(data) as first:
        client = first.client()
        old, shared, recent, idle = (upload(client, upload_clip) for _ in range(4))
        done = client.post("/api/jobs", json={"video": old, "model": "faithful", "scale": 2}).json()["id"]
        cancelled = client.post("/api/jobs", json={"video": shared, "model": "faithful", "scale": 2}).json()["id"]
        assert client.post(f"/api/jobs/{cancelled}/cancel").json()["state"] == "cancelled"
        wait_until(lambda: client.get(f"/api/jobs/{done}").json()["state"] == "done", 600, "the job to finish")
    assert (data / "jobs" / done / "source.mkv").is_file()
    make_older(data, "jobs", "finished", [done], 8)
    make_older(data, "videos", "created", [old, shared, idle], 8)
    with running_studio(data, "--keep-days", "7") as second:
        client = second.client()
        wait_until(lambda: [job["id"] for job in client.get("/api/jobs").json()] == [cancelled], 60,
                   "the job that ended 8 days ago to be removed")
        # shared: uploaded 8 days ago, but a job of it ended just now; recent: uploaded now
        wait_until(lambda: [video["id"] for video in client.get("/api/videos").json()] == [shared, recent], 60,
                   "the uploads of 8 days ago that no job needs to be removed")
        second.stop()
        assert second.process.stderr is not None
        assert "removed 1 job(s) that ended and 2 upload(s) made more than 7 day(s) ago (--keep-days)" in \
            second.process.stderr.read()
    assert not (data / "jobs" / done).exists()
    assert sorted(path.name for path in (data / "videos").iterdir() if path.is_dir()) == sorted([shared, recent])


def test_a_running_studio_removes_again_and_spares_a_video_whose_job_waits(tmp_path):
    library = Library(tmp_path / "data")
    studio = Studio(StudioConfig(tmp_path / "data", keep_days=1e-9), library, JobQueue(library, 1), Previews())
    retention = Retention(studio, every_s=0.05)

    def add_video(video_id: str) -> None:
        folder = library.video_dir(video_id)
        folder.mkdir(parents=True)
        (folder / "source.mp4").write_bytes(b"frames")
        library.add_video(Video(video_id, "a.mp4", folder / "source.mp4", 64, 48, 10, 25.0, 0.4))

    add_video("a" * 16)
    add_video("b" * 16)
    assert library.add_job("c" * 16, "b" * 16, {}, 20)  # queued: its video is needed
    retention.start()
    try:
        gone = lambda video: library.video(video) is None and not library.video_dir(video).exists()  # noqa: E731
        wait_until(lambda: gone("a" * 16), 60, "the first sweep")  # (the record goes first, then the folder)
        add_video("d" * 16)
        wait_until(lambda: gone("d" * 16), 60, "a later sweep")
        assert library.video("b" * 16) is not None and library.video_dir("b" * 16).is_dir()
        library.set_job("c" * 16, "done")
        wait_until(lambda: gone("b" * 16) and library.job("c" * 16) is None, 60,
                   "the job that ended and then its video to be removed")
    finally:
        retention.stop()
        library.close()


def test_lists_page_to_the_newest_and_say_how_many_there_are(ncnn_models, tmp_path, upload_clip):
    with running_studio(tmp_path / "data") as server:
        client = server.client()
        first, second, third = (upload(client, upload_clip) for _ in range(3))
        answer = client.get("/api/videos", params={"limit": 2})
        assert [video["id"] for video in answer.json()] == [second, third] and answer.headers["x-total-count"] == "3"
        jobs = [client.post("/api/jobs", json={"video": video, "model": "realesrgan-x4plus", "scale": 4}).json()["id"]
                for video in (first, second)]
        for job in jobs:
            client.post(f"/api/jobs/{job}/cancel")
        answer = client.get("/api/jobs", params={"limit": 1})
        assert answer.headers["x-total-count"] == "2"
        assert [(job["id"], job["video_name"]) for job in answer.json()] == [(jobs[1], upload_clip.name)]
        assert [job["id"] for job in client.get("/api/jobs").json()] == jobs
        refused = client.get("/api/jobs", params={"limit": 0})
        assert refused.status_code == 422 and "limit" in refused.json()["detail"]


@pytest.mark.parametrize("days", ["0", "-1", "soon"])
def test_keep_days_must_be_a_number_of_days_above_0(tmp_path, days):
    done = vs_sr("studio", "--port", "0", "--data", str(tmp_path), "--keep-days", days, timeout=60)
    assert done.returncode == 2 and "--keep-days: must be" in done.stderr, done.stderr


def test_a_database_from_before_keep_days_counts_its_finished_jobs_from_the_upgrade(tmp_path):
    """Not from when they were made: one retried since, or run for days, would lose its result at the
    first sweep."""
    data = tmp_path / "data"
    data.mkdir()
    made = time.time() - 3 * DAY
    with sqlite3.connect(data / "studio.db") as db:  # the schema of the studio until now
        db.executescript("""
            CREATE TABLE videos (id TEXT PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, width INTEGER,
                height INTEGER, frames INTEGER, fps REAL, duration REAL, created REAL NOT NULL);
            CREATE TABLE jobs (id TEXT PRIMARY KEY, video TEXT NOT NULL REFERENCES videos(id), settings TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'queued', error TEXT, created REAL NOT NULL, seq INTEGER NOT NULL);""")
        db.execute("INSERT INTO videos VALUES (?, 'a.mp4', 'a.mp4', 64, 48, 10, 25, 0.4, ?)", ("a" * 16, made))
        db.executemany("INSERT INTO jobs (id, video, settings, state, created, seq) VALUES (?, ?, '{}', ?, ?, ?)",
                       [("b" * 16, "a" * 16, "done", made, 1), ("c" * 16, "a" * 16, "queued", made, 2)])
    library = Library(data)
    try:
        assert library.expired_jobs(time.time() - 60) == []  # (made 3 days ago)
        assert [job.id for job in library.expired_jobs(time.time() + 1)] == ["b" * 16]  # (the queued one: never)
    finally:
        library.close()


def test_a_job_retried_after_the_sweep_listed_it_is_not_removed(tmp_path):
    """The sweep removed the job it had listed as ended, though it had been retried since (and might
    be running in the folder it removed)."""
    library = Library(tmp_path / "data")
    studio = Studio(StudioConfig(tmp_path / "data", keep_days=1), library, JobQueue(library, 1), Previews())
    try:
        library.add_video(Video("a" * 16, "a.mp4", tmp_path / "a.mp4", 64, 48, 10, 25.0, 0.4))
        assert library.add_job("b" * 16, "a" * 16, {}, 20)
        library.set_job("b" * 16, "failed", "a full disk")
        library.job_dir("b" * 16).mkdir(parents=True)
        later = time.time() + 2 * DAY
        [listed] = library.expired_jobs(later - DAY)
        assert library.requeue_job("b" * 16, 20)  # the user's retry, while the sweep works
        assert not studio.remove_ended_job(listed, later - DAY)
        assert library.job("b" * 16).state == "queued" and library.job_dir("b" * 16).is_dir()
    finally:
        library.close()
