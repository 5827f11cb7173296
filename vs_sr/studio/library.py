"""The studio's records: uploaded videos and upscale jobs, in SQLite under the data directory.

Files live under server-made ids only (DATA/videos/<id>/, DATA/jobs/<id>/): nothing a client
sends is ever part of a path; an upload's file name is display text.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import PathLock, remove_stale_locks
from ..errors import SRError

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, file TEXT NOT NULL, width INTEGER, height INTEGER, frames INTEGER,
    fps REAL, duration REAL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, video TEXT NOT NULL REFERENCES videos(id), settings TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', error TEXT, created REAL NOT NULL, seq INTEGER NOT NULL,
    finished REAL);
-- (a video's jobs, and the count of queued ones each job request makes: without them, scans of every job)
CREATE INDEX IF NOT EXISTS jobs_by_video ON jobs(video);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);
"""
ID = re.compile(r"^[0-9a-f]{16}$")
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")


def new_id() -> str:
    return secrets.token_hex(8)


def valid_id(text: str) -> bool:
    return bool(ID.match(text))


@dataclass(frozen=True)
class Video:
    id: str
    name: str
    file: Path
    width: int
    height: int
    frames: int
    fps: float
    duration: float

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "width": self.width, "height": self.height, "frames": self.frames,
                "fps": self.fps, "duration": self.duration}


@dataclass(frozen=True)
class Job:
    id: str
    video: str
    settings: dict[str, Any]
    state: str
    error: str | None


class Library:
    def __init__(self, data: Path) -> None:
        self.data = data
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SRError(f"cannot make the studio's data folder {data}: {error.strerror}; pass a writable --data "
                          "folder.") from None
        # One server per folder: two would both take its queued jobs, and one would requeue the other's.
        self._server = PathLock(data / "studio.lock")
        if not self._server.acquire(blocking=False):
            raise SRError(f"another vs-sr studio serves {data}; stop it first, or pass another --data folder.")
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(data / "studio.db"), check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row
        self._add_finished_column()

    def _add_finished_column(self) -> None:
        """A database from before jobs kept when they ended (`--keep-days` counts from then) gets
        the column; its finished jobs count from now (when they were made would be too early for one
        retried since or run for days: its result would go with the first sweep)."""
        with self._lock, self.db:
            if "finished" not in {row["name"] for row in self.db.execute("PRAGMA table_info(jobs)")}:
                self.db.execute("ALTER TABLE jobs ADD COLUMN finished REAL")
                self.db.execute(f"UPDATE jobs SET finished = ? WHERE state IN {FINISHED}", (time.time(),))

    def video_dir(self, video_id: str) -> Path:
        return self.data / "videos" / video_id

    @contextmanager
    def receiving(self, video_id: str) -> Iterator[Path]:
        """The folder of an upload in progress, held (a lock beside it) until the block ends: a
        folder no upload holds and no video names is what a killed upload left."""
        (self.data / "videos").mkdir(exist_ok=True)
        with PathLock(self.data / "videos" / f"{video_id}.lock"):
            yield self.video_dir(video_id)

    def remove_unfinished_uploads(self) -> None:
        """Remove the folders of uploads that a killed studio left half-written (a studio sharing
        this folder still holds its own uploads' locks: those stay)."""
        videos = self.data / "videos"
        if not videos.is_dir():
            return
        for folder in videos.iterdir():
            if not folder.is_dir() or not valid_id(folder.name) or self.video(folder.name) is not None:
                continue
            lock = PathLock(videos / f"{folder.name}.lock")
            if lock.acquire(blocking=False):
                try:
                    if self.video(folder.name) is None:  # it may have been finished meanwhile
                        shutil.rmtree(folder, ignore_errors=True)
                finally:
                    lock.release()
        remove_stale_locks(videos)  # those a kill left after its folder had gone

    def job_dir(self, job_id: str) -> Path:
        return self.data / "jobs" / job_id

    def _write(self, query: str, args: tuple[Any, ...]) -> None:
        with self._lock, self.db:
            self.db.execute(query, args)

    def _read(self, query: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(query, args).fetchall()

    # videos
    def add_video(self, video: Video) -> None:
        self._write("INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (video.id, video.name, str(video.file), video.width, video.height, video.frames, video.fps,
                     video.duration, time.time()))

    def video(self, video_id: str) -> Video | None:
        rows = self._read("SELECT * FROM videos WHERE id = ?", (video_id,))
        return _video(rows[0]) if rows else None

    def videos(self, limit: int | None = None) -> list[Video]:
        """Oldest first; with `limit`, only the newest `limit` of them."""
        rows = self._read("SELECT * FROM (SELECT * FROM videos ORDER BY created DESC, rowid DESC LIMIT ?) "
                          "ORDER BY created, rowid", (-1 if limit is None else limit,))
        return [_video(row) for row in rows]

    def videos_of(self, jobs: list[Job]) -> dict[str, Video]:
        """The videos these jobs name, by id (those deleted are missing)."""
        ids = json.dumps(sorted({job.video for job in jobs}))  # (json_each: no limit on the number of ids)
        rows = self._read("SELECT * FROM videos WHERE id IN (SELECT value FROM json_each(?))", (ids,))
        return {row["id"]: _video(row) for row in rows}

    def count_videos(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM videos")[0][0])

    def remove_video(self, video_id: str) -> None:
        self._write("DELETE FROM videos WHERE id = ?", (video_id,))

    def remove_video_without_jobs(self, video_id: str) -> bool:
        """Forget a video unless a job of it exists (one made since it was looked at); True if it went."""
        return self._removed("DELETE FROM videos WHERE id = ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE video = ?)",
                             (video_id, video_id))

    def remove_job_ended_before(self, job_id: str, before: float) -> bool:
        """Forget a job if it still ended before `before` (not one retried since it was looked at); True
        if it went."""
        return self._removed(f"DELETE FROM jobs WHERE id = ? AND state IN {FINISHED} AND finished < ?",
                             (job_id, before))

    def _removed(self, query: str, args: tuple[Any, ...]) -> bool:
        with self._lock, self.db:
            return self.db.execute(query, args).rowcount > 0

    def expired_videos(self, before: float) -> list[Video]:
        """Videos uploaded before `before` (a time.time()) that no job names."""
        rows = self._read("SELECT * FROM videos WHERE created < ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.video "
                          "= videos.id) ORDER BY created", (before,))
        return [_video(row) for row in rows]

    # jobs
    def add_job(self, job_id: str, video_id: str, settings: dict[str, Any], max_queued: int) -> bool:
        """Record a queued job, unless `max_queued` jobs are queued already (False). The count and the
        record are one transaction: requests arriving together cannot all pass the count."""
        with self._lock, self.db:
            if self._queued() >= max_queued:
                return False
            seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self.db.execute("INSERT INTO jobs (id, video, settings, created, seq) VALUES (?, ?, ?, ?, ?)",
                            (job_id, video_id, json.dumps(settings), time.time(), seq))
        return True

    def requeue_job(self, job_id: str, max_queued: int) -> bool:
        """A failed or cancelled job queued again, unless `max_queued` jobs are queued already (False);
        as `add_job`. One that is not failed or cancelled (a second retry at once) stays as it is."""
        with self._lock, self.db:
            if self._queued() >= max_queued:
                return False
            self.db.execute("UPDATE jobs SET state = 'queued', error = NULL, finished = NULL WHERE id = ? AND state "
                            "IN ('failed', 'cancelled')", (job_id,))
        return True

    def queued(self) -> int:
        with self._lock:
            return self._queued()

    def _queued(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0])

    def job(self, job_id: str) -> Job | None:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, video_id: str | None = None, limit: int | None = None) -> list[Job]:
        """In the order they were made; with `limit`, only the newest `limit` of them."""
        where, args = ("WHERE video = ?", (video_id,)) if video_id is not None else ("", ())
        rows = self._read(f"SELECT * FROM (SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                          (*args, -1 if limit is None else limit))
        return [_job(row) for row in rows]

    def count_jobs(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM jobs")[0][0])

    def expired_jobs(self, before: float) -> list[Job]:
        """Jobs that ended (done, failed or cancelled) before `before` (a time.time())."""
        rows = self._read(f"SELECT * FROM jobs WHERE state IN {FINISHED} AND finished < ? ORDER BY seq", (before,))
        return [_job(row) for row in rows]

    def set_job(self, job_id: str, state: str, error: str | None = None) -> None:
        finished = time.time() if state in FINISHED else None
        self._write("UPDATE jobs SET state = ?, error = ?, finished = ? WHERE id = ?", (state, error, finished, job_id))

    def remove_job(self, job_id: str) -> None:
        self._write("DELETE FROM jobs WHERE id = ?", (job_id,))

    def close(self) -> None:
        with self._lock:
            self.db.close()
        self._server.release()


def _video(row: sqlite3.Row) -> Video:
    return Video(row["id"], row["name"], Path(row["file"]), row["width"], row["height"], row["frames"], row["fps"],
                 row["duration"])


def _job(row: sqlite3.Row) -> Job:
    return Job(row["id"], row["video"], json.loads(row["settings"]), row["state"], row["error"])
