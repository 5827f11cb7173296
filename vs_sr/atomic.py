"""Write files so that readers see either nothing or the finished file, and build them once.

Every file vs_sr produces (imported weights, ONNX exports, engines, encoded videos) is written
to a temporary name beside its target and renamed when complete; builds shared between
processes (two vspipe runs asking for the same export) take a lock on the target first. Lock
files are removed when released (`PathLock`), so none is left beside the user's files.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .paths import cache_limit


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: reading it means setting it, which must not race other threads' files.
UMASK = _read_umask()


NAME_MAX = 255  # bytes in a file name (ext4, xfs, btrfs, tmpfs, ...)
RANDOM = 8  # the random part mkstemp and mkdtemp put in a name


def fitting_name(name: str, reserved: int) -> str:
    """`name`, or, where it and `reserved` more bytes would pass the 255 bytes a file name may have,
    its head and a hash of it (different long names stay apart): temporary names made from a
    user's file name then work for any name that is legal itself."""
    encoded = os.fsencode(name)
    if len(encoded) + reserved <= NAME_MAX:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    head = encoded[:max(0, NAME_MAX - reserved - len(digest) - 1)].decode("utf-8", errors="ignore")  # whole characters
    return f"{head}~{digest}"


def _part_affixes(target: Path) -> tuple[str, str]:
    """The prefix and suffix of `target`'s temporary files (".<stem>.", ".part<suffix>")."""
    suffix = f".part{target.suffix}"
    return f".{fitting_name(target.stem, 2 + RANDOM + len(os.fsencode(suffix)))}.", suffix


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _part_affixes(target)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    os.close(handle)
    temp = Path(name)
    temp.chmod(0o666 & ~UMASK)  # mkstemp's 0600 would otherwise reach the finished file
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


LOCK_SUFFIX = ".lock"


def cache_file(directory: Path, stem: str, tail: str) -> Path:
    """`directory / (stem + tail)`, the stem (a user's file name, say) shortened by `fitting_name`
    where the name or its lock file's would pass the file-name limit; `tail` carries the key."""
    return directory / (fitting_name(stem, len(os.fsencode(tail)) + len(LOCK_SUFFIX)) + tail)


def build_once(target: Path, build: Callable[[Path], None], *, valid: Callable[[Path], bool] = Path.is_file,
               bounded: bool = False) -> Path:
    """Return `target`, building it with `build(temp_path)` under an inter-process lock if needed.

    A second process waiting on the lock finds the finished file and does not build it again.
    Temporary files of builders that were killed are removed by the next builder (it holds the
    lock, so no live builder owns them). `bounded`: the folder is a cache kept within
    $VS_SR_CACHE_LIMIT_GB (`keep_within`), its files ranked by their last use.
    """
    if valid(target):
        if bounded:
            _mark_used(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with PathLock(str(target) + LOCK_SUFFIX):
        if not valid(target):
            prefix, suffix = _part_affixes(target)
            for leftover in target.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
                leftover.unlink(missing_ok=True)
            with atomic_output(target) as temp:
                build(temp)
    if bounded:
        keep_within(target.parent, cache_limit())
    return target


def _mark_used(path: Path) -> None:
    try:  # the access time is the last use, what `keep_within` ranks by (set here: mounts may not keep it)
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))  # (the modification time stays: when built)
    except OSError:  # a read-only cache shared by others: its owner keeps it
        pass


RECENT = 3600.0  # seconds: a file used this recently may be about to be opened by another process; kept


def keep_within(folder: Path, limit: int | None) -> list[Path]:
    """Remove the files of `folder` used longest ago until it holds at most `limit` bytes (None:
    no limit), sparing those used within the last hour and those being built (their lock held);
    the files removed. Exports are made per frame size, so a cache of them grows with every size
    a user ever upscaled without this."""
    if limit is None:
        return []
    files = []
    for entry in _cached_files(folder):
        status = entry.stat()  # (once: the last use and the size)
        files.append((status.st_atime, status.st_size, entry))
    total = sum(size for _, size, _ in files)
    removed = []
    for used, size, path in sorted(files, key=lambda item: item[0]):
        if total <= limit or used > time.time() - RECENT:
            break
        lock = PathLock(str(path) + LOCK_SUFFIX)
        if not lock.acquire(blocking=False):
            continue
        try:
            path.unlink(missing_ok=True)
        finally:
            lock.release()
        total -= size
        removed.append(path)
    return removed


def _cached_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    return [e for e in entries if not e.name.startswith(".") and not e.name.endswith(LOCK_SUFFIX) and e.is_file()]


class PathLock:
    """An exclusive lock between processes (and threads) on the file `path`, which is removed when
    the lock is released, so lock files do not pile up: one per output ever written, or one left
    beside every downloaded model.

    Removing a lock file is the racy part of file locks. With plain flock, a process B that opened
    the file just before the holder A removed it would lock the removed file while a process C
    creates a new one at the same path and locks that: two holders. So the holder removes the
    path *before* it unlocks, and whoever gets the flock checks that the file it locked is still
    the one at the path (same device and inode); if it is not, the holder it waited for removed
    it, and it opens the path again. Only the file at the path can be held, only by its holder
    can it be removed, hence at most one process holds the lock at any moment. A lock file left by
    a killed process is simply taken by the next one (flock dies with its holder) and removed.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it, or not); whether it was taken."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            if self._still_at_path(fd):
                self._fd = fd
                return True
            os.close(fd)  # removed by the holder we waited for: lock the file now at the path

    def _still_at_path(self, fd: int) -> bool:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Remove the lock file, then unlock (closing the descriptor unlocks)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> PathLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def remove_stale_locks(folder: Path) -> None:
    """Remove the lock files in `folder` that nobody holds (left by killed processes); the ones
    held are left alone. Safe for the same reason as `PathLock.release`: a file is removed only
    by whoever holds its lock."""
    for path in folder.glob("*.lock"):
        lock = PathLock(path)
        try:
            if lock.acquire(blocking=False):
                lock.release()
        except OSError:  # gone meanwhile, or not ours to open: nothing to sweep
            continue
