"""An output file being written: held against other runs, built in a work folder beside it, and
renamed into place only when finished and checked.

While a run owns an output it holds a lock on that path (in the user cache directory, so nothing
extra appears beside the user's files): a second run to the same output is refused instead of
both "succeeding" and one silently replacing the other. Temporary files are named after the
output with a `.vs-sr-` marker; a run that finds such leftovers of its own output (a SIGKILLed
earlier run: nobody else can hold the lock) removes them. Nothing else is ever deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from ..atomic import UMASK
from ..errors import SRError
from ..paths import cache_dir

MARKER = ".vs-sr-"


class OutputSlot:
    """`with OutputSlot(path, overwrite) as slot:` write `slot.target` (work files in `slot.work`,
    a folder beside the output), then `slot.commit()`; leaving the block removes the work folder,
    and with it everything not committed."""

    def __init__(self, output: Path, overwrite: bool) -> None:
        self.output = output.absolute()
        self.overwrite = overwrite
        digest = hashlib.sha256(str(self.output).encode()).hexdigest()[:24]
        lock_dir = cache_dir("locks")
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(lock_dir / f"{digest}.lock"))
        self.work = Path()
        self.target = Path()

    def __enter__(self) -> OutputSlot:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise SRError(f"another vs-sr run is writing {self.output}; wait for it or choose another output.") from None
        try:
            self.remove_leftovers()
            self.work = Path(tempfile.mkdtemp(prefix=f".{self.output.name}{MARKER}", dir=self.output.parent))
            self.target = self.work / f"output{self.output.suffix}"  # same file system: the rename is atomic
        except BaseException:
            self._lock.release()
            raise
        return self

    def leftovers(self) -> list[Path]:
        """Files and folders an earlier run to this output left behind (recognised by name only)."""
        return sorted(self.output.parent.glob(f".{_glob_escape(self.output.name)}{MARKER}*"))

    def remove_leftovers(self) -> None:
        for path in self.leftovers():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def commit(self) -> None:
        """Rename the finished target onto the output."""
        if self.output.exists() and not self.overwrite:  # appeared meanwhile, from outside vs-sr
            raise SRError(f"{self.output} appeared while this run worked; pass --overwrite (-y) to replace it.")
        self.target.chmod(0o666 & ~UMASK)
        os.replace(self.target, self.output)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            shutil.rmtree(self.work, ignore_errors=True)
        finally:
            self._lock.release()


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
