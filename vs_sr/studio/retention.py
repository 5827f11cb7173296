"""`--keep-days`: finished jobs (with their results) and uploads no job needs any more are removed
once they are that old, at the server's start and every hour while it runs, so that a studio left
serving for months does not fill its disk."""

from __future__ import annotations

import logging
import threading
import time

from .context import Studio

log = logging.getLogger("vs_sr.studio")
DAY = 86400.0
SWEEP_EVERY_S = 3600.0


def remove_expired(studio: Studio, now: float | None = None, stop: threading.Event | None = None) -> tuple[int, int]:
    """Remove the jobs that ended, and then the videos uploaded, more than `keep_days` before `now`
    (a video only once no job of it is left), until `stop` is set; (jobs, videos) removed."""
    keep_days = studio.config.keep_days
    if keep_days is None:
        return 0, 0
    before = (time.time() if now is None else now) - keep_days * DAY
    stopped = stop.is_set if stop is not None else lambda: False
    jobs = sum(studio.remove_ended_job(job, before) for job in studio.library.expired_jobs(before) if not stopped())
    videos = sum(studio.remove_unused_video(video) for video in studio.library.expired_videos(before)
                 if not stopped())
    if jobs or videos:
        log.warning("removed %d job(s) that ended and %d upload(s) made more than %g day(s) ago (--keep-days)",
                    jobs, videos, keep_days)
    return jobs, videos


class Retention:
    """A thread that calls `remove_expired` every `every_s` seconds until `stop`."""

    def __init__(self, studio: Studio, every_s: float = SWEEP_EVERY_S) -> None:
        self.studio = studio
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-retention", daemon=True)

    def start(self) -> None:
        if self.studio.config.keep_days is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                remove_expired(self.studio, stop=self._stop)
            except Exception:  # a sweep that fails (a full disk, say) must not end the server's sweeps
                log.exception("removing expired jobs and uploads failed; trying again in %g s", self.every_s)
            self._stop.wait(self.every_s)
