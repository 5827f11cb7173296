"""An output file being written: held against other runs, built in a work folder beside it, and
renamed into place only when finished and checked.

While a run owns an output it holds a lock on that path (in the user cache directory, so nothing
extra appears beside the user's files; the key is the real folder and the name, so `sub/../x.mkv`
or a symlinked folder is the same output): a second run to the same output is refused instead of
both "succeeding" and one silently replacing the other. Lock files go when released (see
`atomic.PathLock`), so the lock folder holds only the outputs being written. Temporary files are
named after the output with a `.vs-sr-` marker; a run that finds such leftovers of its own output
(a SIGKILLed earlier run: nobody else can hold the lock) removes them. Nothing else is ever
deleted. A run that fails on a full disk says so, whichever step met it first.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from ..atomic import RANDOM, UMASK, PathLock, fitting_name, remove_stale_locks
from ..errors import SRError
from ..paths import lock_dir

MARKER = ".vs-sr-"
FULL = 1 << 20  # bytes: a run that failed with less than this left on its disk failed because the disk filled up


class DiskFull(SRError):
    """A run failed because the disk of its output filled up (whichever tool or check met it first);
    not permanent: the same run can succeed once there is space."""


class OutputSlot:
    """`with OutputSlot(path, overwrite) as slot:` write `slot.target` (work files in `slot.work`,
    a folder beside the output), then `slot.commit()`; leaving the block removes the work folder,
    and with it everything not committed."""

    def __init__(self, output: Path, overwrite: bool, appeared: str = "pass --overwrite (-y) to replace it") -> None:
        self.output = output.absolute()
        self.overwrite = overwrite
        self.appeared = appeared
        """What to do about a file that appeared at the output while this run worked (not overwriting)."""
        # The real path: two spellings of one output (a symlinked folder, `sub/../`) share one lock.
        key = self.output.parent.resolve() / self.output.name
        digest = hashlib.sha256(os.fsencode(key)).hexdigest()[:24]
        self._lock_dir = lock_dir()
        self._lock = PathLock(self._lock_dir / f"{digest}.lock")
        self.prefix = work_prefix(self.output.name)
        self.work = Path()
        self.target = Path()

    def __enter__(self) -> OutputSlot:
        remove_stale_locks(self._lock_dir)  # those of killed runs
        if not self._lock.acquire(blocking=False):
            raise SRError(f"another vs-sr run is writing {self.output}; wait for it or choose another output.")
        try:
            self.remove_leftovers()
            self.work = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.output.parent))
            self.target = self.work / f"output{self.output.suffix}"  # same file system: the rename is atomic
        except BaseException:
            self._lock.release()
            raise
        return self

    def leftovers(self) -> list[Path]:
        """Files and folders an earlier run to this output left behind (recognised by name only)."""
        return sorted(self.output.parent.glob(f"{glob.escape(self.prefix)}*"))

    def remove_leftovers(self) -> None:
        for path in self.leftovers():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def commit(self) -> None:
        """Rename the finished target onto the output."""
        if self.output.exists() and not self.overwrite:  # appeared meanwhile, from outside vs-sr
            raise SRError(f"{self.output} appeared while this run worked; {self.appeared}.")
        self.target.chmod(0o666 & ~UMASK)
        os.replace(self.target, self.output)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # Measured before the work folder goes: its partial files are what filled the disk.
        free = _free_bytes(self.output.parent) if isinstance(error, (SRError, OSError)) else None
        try:
            shutil.rmtree(self.work, ignore_errors=True)
        finally:
            self._lock.release()
        if free is not None and free < FULL:
            raise DiskFull(f"the disk holding {self.output.parent} is full ({readable_size(free)} free) and "
                           f"{self.output.name} did not fit: free some space or write to another disk, and run "
                           "again; nothing was written.") from None


def work_prefix(name: str) -> str:
    """The work folder's name before mkdtemp's random part: `.<output name>.vs-sr-`, the name
    shortened (with a hash) where the whole would not fit in a file name."""
    return f".{fitting_name(name, 1 + len(MARKER) + RANDOM)}{MARKER}"


def _free_bytes(folder: Path) -> int | None:
    """Bytes an ordinary user may still write on `folder`'s file system."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def readable_size(count: float) -> str:
    """A number of bytes for a person: '512 bytes', '48 KiB', '28 MiB', '3.2 GiB'."""
    for unit in ("bytes", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
