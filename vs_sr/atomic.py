"""Write files so that readers see either nothing or the finished file, and build them once.

Every file vs_sr produces (imported weights, ONNX exports, engines, encoded videos) is written
to a temporary name beside its target and renamed when complete; builds shared between
processes (two vspipe runs asking for the same export) take a lock on the target first. Lock
files are removed when released (`PathLock`), so none is left beside the user's files.
"""

from __future__ import annotations

import errno
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

from .paths import NAME_MAX, cache_limit


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: reading it means setting it, which must not race other threads' files.
UMASK = _read_umask()


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
        _flush(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _flush(path: Path) -> None:
    """Its data on the disk before the rename that publishes it: after a crash (power, VM) the
    rename may otherwise survive and the data not, leaving a complete name on a truncated file."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


LOCK_SUFFIX = ".lock"
DIGEST_SUFFIX = ".sha256"


def cache_file(directory: Path, stem: str, tail: str) -> Path:
    """`directory / (stem + tail)`, the stem (a user's file name, say) shortened by `fitting_name`
    where the name, its lock file's or its digest's would pass the file-name limit; `tail` carries
    the key."""
    return directory / (fitting_name(stem, len(os.fsencode(tail)) + 1 + len(DIGEST_SUFFIX)) + tail)


def digest_file(target: Path) -> Path:
    """Where a cached file's sha256 is kept: a hidden file beside it (`build_once`)."""
    return target.with_name(f".{target.name}{DIGEST_SUFFIX}")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def intact(target: Path) -> bool:
    """`target` is there and is what was built: the sha256 recorded when it was built matches (a
    file cut short by a crash, emptied or damaged on the disk is built again, not loaded)."""
    try:
        return digest_file(target).read_text().strip() == file_sha256(target)
    except (OSError, ValueError):  # either is missing (a build killed between the two: built again), or damaged
        return False


def build_once(target: Path, build: Callable[[Path], None], *, bounded: bool = False) -> Path:
    """Return `target`, building it with `build(temp_path)` under an inter-process lock unless it
    is there and `intact`.

    A second process waiting on the lock finds the finished file and does not build it again.
    Temporary files of builders that were killed are removed by the next builder (it holds the
    lock, so no live builder owns them). `bounded`: the folder is a cache kept within
    $VS_SR_CACHE_LIMIT_GB (`keep_within`), its files ranked by their last use.
    """
    if intact(target):
        if bounded:
            _mark_used(target)
        return target
    try:
        _build_locked(target, build)
    except OSError as error:
        if error.errno not in UNWRITABLE or not _in_folder(error.filename, target.parent):
            raise
        if error.errno != errno.ENOSPC and target.is_file() and not digest_file(target).exists():
            return target  # built before digests were kept, in a cache shared read-only: taken as it is
        from .errors import SRError
        from .paths import CACHE_DIR_ENV

        raise SRError(f"cannot write to the cache folder {target.parent} ({error.strerror}): set {CACHE_DIR_ENV} to "
                      "a folder you can write.") from None
    if bounded:
        keep_within(target.parent, cache_limit())
    return target


# What a cache folder that cannot be written raises (and a full one): said as such, naming the fix.
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT)


def _in_folder(filename: object, folder: Path) -> bool:
    """Whether the file an error names is `folder`, directly in it, or a folder above it (made with
    it: the cache's own folder under an $XDG_CACHE_HOME that cannot be written)."""
    if not isinstance(filename, str | os.PathLike):
        return False
    path = Path(filename)
    return path == folder or path.parent == folder or path in folder.parents


def _build_locked(target: Path, build: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with PathLock(str(target) + LOCK_SUFFIX):
        if intact(target):  # built by the process this one waited for
            return
        for kept in (target, digest_file(target)):  # part files of builders that were killed
            prefix, suffix = _part_affixes(kept)
            for leftover in target.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
                leftover.unlink(missing_ok=True)
        with atomic_output(target) as temp:
            build(temp)
            # Recorded before the file takes its name: killed between the two, the digest does not
            # match what is (or is not) at the name, so the next use builds it again.
            with atomic_output(digest_file(target)) as record:
                record.write_text(file_sha256(temp) + "\n")


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
        try:
            status = entry.stat()  # (once: the last use and the size)
        except FileNotFoundError:  # removed meanwhile, by another process keeping the same folder
            continue
        files.append((status.st_atime, status.st_size, entry))
    total = sum(size for _, size, _ in files)
    removed = []
    for used, size, path in sorted(files, key=lambda item: item[0]):
        if total <= limit or used > time.time() - RECENT:
            break
        if _remove_unused(path):
            total -= size
            removed.append(path)
    return removed


def _remove_unused(path: Path) -> bool:
    """Remove a cached file (and its digest) unless it is being built or was used within RECENT
    seconds, judged under its lock: another process may have used it since the folder was listed."""
    lock = PathLock(str(path) + LOCK_SUFFIX)
    try:
        if not lock.acquire(blocking=False):
            return False
    except OSError:  # a folder we cannot write (a cache shared read-only): its owner keeps it
        return False
    try:
        if path.stat().st_atime > time.time() - RECENT:
            return False
        path.unlink()
        digest_file(path).unlink(missing_ok=True)
        return True
    except OSError:  # gone meanwhile (removed by another process), or not ours to remove
        return False
    finally:
        lock.release()


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
