"""A batch's state on disk: SQLite in write-ahead-log mode under DIR/.vs-sr-batch/.

Only the batch's driver writes; other programs (`vs-sr batch status`, the studio) read at any
time. Every transition (a chunk started, verified, failed; a video assembled) is committed at
once, so a killed driver loses nothing it had finished; the frame counts of running chunks are
written at most once a second.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SRError

STATE_DIR = ".vs-sr-batch"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY, input TEXT NOT NULL UNIQUE, output TEXT NOT NULL, frames INTEGER,
    state TEXT NOT NULL DEFAULT 'pending', error TEXT, signature TEXT, written INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    video INTEGER NOT NULL REFERENCES videos(id), idx INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, sha256 TEXT, size INTEGER,
    progress INTEGER NOT NULL DEFAULT 0, error TEXT, node TEXT, PRIMARY KEY (video, idx));
"""
# Video states: pending, running, assembling (output renamed, not yet recorded), done, failed.
# `status` shows assembling as running.


@dataclass(frozen=True)
class Video:
    id: int
    input: Path
    output: Path
    frames: int | None
    state: str
    error: str | None
    written: bool
    """This batch has written (or is writing) the output file: it may replace it."""


@dataclass(frozen=True)
class Chunk:
    video: int
    idx: int
    first: int
    last: int
    state: str
    attempts: int
    sha256: str | None
    size: int | None
    progress: int
    error: str | None
    node: str | None

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    @property
    def key(self) -> tuple[int, int]:
        return self.video, self.idx


def state_path(directory: Path) -> Path:
    return directory / STATE_DIR / "state.db"


class State:
    """The batch's database; `State(path)` creates it if needed (`readonly` opens an existing one)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            if not path.is_file():
                raise SRError(f"{path.parent.parent} holds no vs-sr batch (no {STATE_DIR}/state.db).")
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses no committed transition
            self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row
        self._flushed: float | None = None  # monotonic time of the last progress write

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    # settings
    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def clear(self) -> None:
        """Forget everything but the schema (--restart)."""
        with self.transaction() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM videos")
            db.execute("DELETE FROM meta")

    # videos
    def add_video(self, source: Path, output: Path) -> bool:
        """Record an input (its size and modification time as its signature). An input already
        recorded whose file changed since is planned again from scratch; returns True then."""
        stat = source.stat()
        signature = f"{stat.st_size}:{stat.st_mtime_ns}"
        with self.transaction() as db:
            row = db.execute("SELECT id, signature FROM videos WHERE input = ?", (str(source),)).fetchone()
            if row is None:
                db.execute("INSERT INTO videos (input, output, signature) VALUES (?, ?, ?)",
                           (str(source), str(output), signature))
                return False
            if row["signature"] == signature:
                return False
            db.execute("UPDATE videos SET signature = ? WHERE id = ?", (signature, row["id"]))
        self.reset_video(row["id"])
        return True

    def reset_video(self, video_id: int) -> None:
        """Forget a video's chunks and plan: it is done again from the start."""
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE video = ?", (video_id,))
            db.execute("UPDATE videos SET frames = NULL, state = 'pending', error = NULL WHERE id = ?", (video_id,))

    def videos(self) -> list[Video]:
        rows = self.db.execute("SELECT * FROM videos ORDER BY id").fetchall()
        return [Video(r["id"], Path(r["input"]), Path(r["output"]), r["frames"], r["state"], r["error"],
                      bool(r["written"])) for r in rows]

    def video(self, video_id: int) -> Video:
        return next(v for v in self.videos() if v.id == video_id)

    def plan_video(self, video_id: int, frames: int, ranges: list[tuple[int, int]]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE videos SET frames = ?, state = 'pending', error = NULL WHERE id = ?", (frames, video_id))
            db.executemany("INSERT INTO chunks (video, idx, first, last) VALUES (?, ?, ?, ?)",
                           [(video_id, i, first, last) for i, (first, last) in enumerate(ranges)])

    def set_video(self, video_id: int, state: str, error: str | None = None) -> None:
        """A video's state; from 'assembling' on, its output is the batch's to replace."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET state = ?, error = ?, written = written OR ? WHERE id = ?",
                       (state, error, state in ("assembling", "done"), video_id))

    # chunks
    def chunks(self, video_id: int | None = None) -> list[Chunk]:
        where = "" if video_id is None else " WHERE video = ?"
        args = () if video_id is None else (video_id,)
        rows = self.db.execute(f"SELECT * FROM chunks{where} ORDER BY video, idx", args).fetchall()
        return [Chunk(r["video"], r["idx"], r["first"], r["last"], r["state"], r["attempts"], r["sha256"], r["size"],
                      r["progress"], r["error"], r["node"]) for r in rows]

    def start_chunk(self, key: tuple[int, int]) -> int:
        """Mark a chunk running; returns its attempt number."""
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = 'running', attempts = attempts + 1, progress = 0, error = NULL "
                       "WHERE video = ? AND idx = ?", key)
            db.execute("UPDATE videos SET state = 'running' WHERE id = ? AND state = 'pending'", key[:1])
            row = db.execute("SELECT attempts FROM chunks WHERE video = ? AND idx = ?", key).fetchone()
        return int(row["attempts"])

    def finish_chunk(self, key: tuple[int, int], sha256: str, size: int, node: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = 'done', sha256 = ?, size = ?, node = ?, progress = last - first + 1, "
                       "error = NULL WHERE video = ? AND idx = ?", (sha256, size, node, *key))

    def fail_chunk(self, key: tuple[int, int], error: str, final: bool) -> None:
        """A failed attempt: the chunk waits for another unless this was its last."""
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = ?, error = ?, progress = 0 WHERE video = ? AND idx = ?",
                       ("failed" if final else "pending", error, *key))

    def release_chunk(self, key: tuple[int, int], count_attempt: bool) -> None:
        """A chunk stopped on purpose (Ctrl-C) goes back to pending; its attempt is not counted."""
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = 'pending', progress = 0, attempts = attempts - ? "
                       "WHERE video = ? AND idx = ?", (0 if count_attempt else 1, *key))

    def redo_chunk(self, key: tuple[int, int], reason: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = 'pending', sha256 = NULL, size = NULL, progress = 0, error = ? "
                       "WHERE video = ? AND idx = ?", (reason, *key))

    def recover(self) -> None:
        """After a crash: running chunks and videos go back to pending (their attempt counts)."""
        with self.transaction() as db:
            db.execute("UPDATE chunks SET state = 'pending', progress = 0 WHERE state = 'running'")
            db.execute("UPDATE videos SET state = 'pending' WHERE state = 'running'")

    def record_progress(self, progress: dict[tuple[int, int], int], force: bool = False) -> None:
        """Frames encoded so far by running chunks: written at most once a second."""
        now = time.monotonic()
        if not force and self._flushed is not None and now - self._flushed < 1.0:
            return
        self._flushed = now
        with self.transaction() as db:
            db.executemany("UPDATE chunks SET progress = ? WHERE video = ? AND idx = ? AND state = 'running'",
                           [(frames, *key) for key, frames in progress.items()])
