"""Many files: chunk plans, state on disk (SQLite), executors (local, Ray), assembly, the run.

`run_batch` is what `vs-sr batch` and the studio call; `batch_status` reads a directory's state.
"""

from .driver import Outcome, RunOptions
from .launch import run_batch
from .settings import BatchSettings
from .status import batch_status

__all__ = ["BatchSettings", "Outcome", "RunOptions", "batch_status", "run_batch"]
