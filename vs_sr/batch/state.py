"""A batch's state on disk: SQLite in write-ahead-log mode under DIR/.vs-sr-batch/.

Only the batch's driver writes; other programs (`vs-sr batch status`, the studio) read at any
time. Every transition (a chunk started, verified, failed; a video assembled) is committed at
once, so a killed driver loses nothing it had finished; the frame counts of running chunks are
written at most once a second. The database is built under a temporary name and renamed into
place with its schema, so a reader finds either no state (the batch has not started) or a whole
one. Outputs are stored relative to the batch directory, so a moved directory keeps working.
A state that cannot be read (damaged, emptied) or written (a full disk) is a `StateError` saying
what to do; `--restart` rebuilds it (see records.py for what is kept).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_output
from ..errors import SRError

STATE_DIR = ".vs-sr-batch"
DRIVER_LOCK = "driver.lock"  # held (flock) by the one driver working on the directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY, input TEXT NOT NULL UNIQUE, output TEXT NOT NULL, frames INTEGER,
    state TEXT NOT NULL DEFAULT 'pending', error TEXT, signature TEXT, written INTEGER NOT NULL DEFAULT 0,
    salvaged TEXT);
CREATE TABLE IF NOT EXISTS chunks (
    video INTEGER NOT NULL REFERENCES videos(id), idx INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, sha256 TEXT, size INTEGER,
    progress INTEGER NOT NULL DEFAULT 0, error TEXT, node TEXT, PRIMARY KEY (video, idx));
"""
TABLES = {"meta", "videos", "chunks"}
# Columns added since the first release, for states an earlier version made.
ADDED_COLUMNS = {"videos": {"salvaged": "TEXT"}}
# Video states: pending, running, assembling (output renamed, not yet recorded), done, failed.
# `status` shows assembling as running.
REBUILD = ("run the batch again with --restart (the same `vs-sr batch` command) to rebuild it; chunks and outputs "
           "that still verify are kept")


class StateError(SRError):
    """The batch's state cannot be read (damaged, emptied) or written (a full disk)."""


def state_error(path: Path, error: sqlite3.Error) -> StateError:
    """What went wrong with the state file, and what to do, in one line."""
    text = str(error)
    if "disk is full" in text:
        return StateError(f"no space left to write the batch state {path}; free some space and run the same command "
                          "again (every verified chunk is kept).")
    if type(error) is sqlite3.DatabaseError or "no such" in text or "malformed" in text:
        return StateError(f"the batch state {path} is damaged ({text}); {REBUILD}.")
    return StateError(f"cannot use the batch state {path}: {text}.")


def remove_state(path: Path) -> None:
    """Delete a state file with its write-ahead log and index (a log left beside a new database
    would be replayed into it)."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        path.with_name(name).unlink(missing_ok=True)


def make_state_dir(directory: Path) -> Path:
    """The batch's own folder in its output directory, made if missing, or a line saying why not."""
    folder = directory / STATE_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as error:  # (a full disk is said by the driver's own handler)
        raise SRError(f"cannot make the batch's state in {directory} ({error.strerror}); give an --output-dir you "
                      "can write.") from None
    return folder


def _create(path: Path) -> None:
    """A new state, schema and all, renamed into place only when complete."""
    make_state_dir(path.parent.parent)
    try:
        with atomic_output(path) as temp:
            db = sqlite3.connect(str(temp))
            try:
                db.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection uses it
                db.executescript(SCHEMA)
            finally:
                db.close()  # the last connection folds the log into the file and removes it
    except sqlite3.Error as error:
        raise state_error(path, error) from None


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
    signature: str | None = None
    """The input's size and modification time when it was recorded."""
    salvaged: str | None = None
    """What the input lacked when its decodable part was upscaled (--salvage); None: it decoded in full."""


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


def signature(source: Path) -> str:
    """An input's identity between runs: its size and modification time."""
    stat = source.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class State:
    """The batch's database; `State(path)` creates it if needed (`readonly` opens an existing one).
    Raises StateError for a state that is damaged or was emptied."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.directory = path.parent.parent
        if readonly and not path.is_file():
            raise SRError(f"{self.directory} holds no vs-sr batch (no {STATE_DIR}/state.db).")
        if not readonly and not path.exists():
            _create(path)
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro" if readonly else str(path), uri=readonly, timeout=30,
                                      check_same_thread=False)
        except sqlite3.Error as error:
            raise state_error(path, error) from None
        self.db.row_factory = sqlite3.Row
        try:
            self._check(readonly)
        except BaseException:
            self.db.close()
            raise
        self._flushed: float | None = None  # monotonic time of the last progress write

    def _check(self, readonly: bool) -> None:
        """Refuse a file that is not a whole state; bring one of an earlier version up to date."""
        tables = {str(r["name"]) for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not TABLES <= tables:
            raise StateError(f"the batch state {self.path} is empty: it was lost (emptied or replaced); {REBUILD}.")
        if readonly:
            return
        self._rows("PRAGMA synchronous=NORMAL")  # WAL: a crash loses no committed transition
        with self.transaction() as db:
            for table, columns in ADDED_COLUMNS.items():
                present = {str(r["name"]) for r in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.db:
                yield self.db
        except sqlite3.Error as error:
            raise state_error(self.path, error) from None

    def _rows(self, query: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(query, args).fetchall()
        except sqlite3.Error as error:
            raise state_error(self.path, error) from None

    # settings
    def setting(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return None if not rows else str(rows[0]["value"])

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # videos
    def _stored(self, output: Path) -> str:
        """An output as the state keeps it: relative to the batch directory when inside it."""
        try:
            return str(output.relative_to(self.directory))
        except ValueError:
            return str(output)

    def add_video(self, source: Path, output: Path) -> bool:
        """Record an input (its size and modification time as its signature). An input already
        recorded whose file changed since is planned again from scratch; returns True then."""
        mark = signature(source)
        with self.transaction() as db:
            row = db.execute("SELECT id, signature FROM videos WHERE input = ?", (str(source),)).fetchone()
            if row is None:
                db.execute("INSERT INTO videos (input, output, signature) VALUES (?, ?, ?)",
                           (str(source), self._stored(output), mark))
                return False
            if row["signature"] == mark:
                return False
            db.execute("UPDATE videos SET signature = ? WHERE id = ?", (mark, row["id"]))
        self.reset_video(row["id"])
        return True

    def move_input(self, video_id: int, source: Path) -> None:
        """A video's input found under another name (its folder renamed): the video, not a new one."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET input = ? WHERE id = ?", (str(source), video_id))

    def reset_video(self, video_id: int) -> None:
        """Forget a video's chunks and plan: it is done again from the start."""
        with self.transaction() as db:
            db.execute("DELETE FROM chunks WHERE video = ?", (video_id,))
            db.execute("UPDATE videos SET frames = NULL, state = 'pending', error = NULL, salvaged = NULL WHERE id = ?",
                       (video_id,))

    def retry_failed(self, left_out: Collection[int] = ()) -> list[Video]:
        """Failed videos, but those `left_out`, are tried again (a full disk or a missing tool is not
        permanent): their chunks that are not done wait again, with their attempts counted afresh;
        done ones stay."""
        failed = [v for v in self.videos() if v.state == "failed" and v.id not in left_out]
        out = list(left_out)
        kept = f"NOT IN ({', '.join('?' * len(out))})"
        with self.transaction() as db:  # (a failed chunk whose video's failure was never recorded: a full disk)
            db.execute("UPDATE chunks SET state = 'pending', attempts = 0, progress = 0 WHERE (state = 'failed' OR "
                       f"(state != 'done' AND video IN (SELECT id FROM videos WHERE state = 'failed'))) AND video {kept}",
                       out)
            db.execute(f"UPDATE videos SET state = 'pending' WHERE state = 'failed' AND id {kept}", out)
        return failed

    def videos(self) -> list[Video]:
        rows = self._rows("SELECT * FROM videos ORDER BY id")
        return [Video(r["id"], Path(r["input"]), self.directory / r["output"], r["frames"], r["state"], r["error"],
                      bool(r["written"]), r["signature"], r["salvaged"] if "salvaged" in r.keys() else None)
                for r in rows]

    def video(self, video_id: int) -> Video:
        return next(v for v in self.videos() if v.id == video_id)

    def plan_video(self, video_id: int, frames: int, ranges: list[tuple[int, int]]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE videos SET frames = ?, state = 'pending', error = NULL WHERE id = ?", (frames, video_id))
            db.executemany("INSERT INTO chunks (video, idx, first, last) VALUES (?, ?, ?, ?)",
                           [(video_id, i, first, last) for i, (first, last) in enumerate(ranges)])

    def set_salvaged(self, video_id: int, salvaged: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE videos SET salvaged = ? WHERE id = ?", (salvaged, video_id))

    def set_video(self, video_id: int, state: str, error: str | None = None) -> None:
        """A video's state; from 'assembling' on, its output is the batch's to replace."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET state = ?, error = ?, written = written OR ? WHERE id = ?",
                       (state, error, state in ("assembling", "done"), video_id))

    def set_written(self, video_id: int) -> None:
        """The output at the video's path is one this batch made (its record says so): it may be replaced."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET written = 1 WHERE id = ?", (video_id,))

    def adopt_output(self, video_id: int, frames: int, salvaged: str | None) -> None:
        """The video's output, made by this batch before its state was lost, is its result."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET frames = ?, state = 'done', error = NULL, written = 1, salvaged = ? WHERE id = ?",
                       (frames, salvaged, video_id))

    # chunks
    def chunks(self, video_id: int | None = None) -> list[Chunk]:
        where = "" if video_id is None else " WHERE video = ?"
        args = () if video_id is None else (video_id,)
        rows = self._rows(f"SELECT * FROM chunks{where} ORDER BY video, idx", args)
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
