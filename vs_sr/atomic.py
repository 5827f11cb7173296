"""Write files so that readers see either nothing or the finished file, and build them once.

Every file vs_sr produces (imported weights, ONNX exports, engines, encoded videos) is written
to a temporary name beside its target and renamed when complete; builds shared between
processes (two vspipe runs asking for the same export) take a lock on the target first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: reading it means setting it, which must not race other threads' files.
UMASK = _read_umask()


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".part{target.suffix}")
    os.close(handle)
    temp = Path(name)
    temp.chmod(0o666 & ~UMASK)  # mkstemp's 0600 would otherwise reach the finished file
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def build_once(target: Path, build: Callable[[Path], None], *, valid: Callable[[Path], bool] = Path.is_file) -> Path:
    """Return `target`, building it with `build(temp_path)` under an inter-process lock if needed.

    A second process waiting on the lock finds the finished file and does not build it again.
    Temporary files of builders that were killed are removed by the next builder (it holds the
    lock, so no live builder owns them).
    """
    from filelock import FileLock

    if valid(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not valid(target):
            for leftover in target.parent.glob(f".{target.stem}.*.part{target.suffix}"):
                leftover.unlink(missing_ok=True)
            with atomic_output(target) as temp:
                build(temp)
    return target
