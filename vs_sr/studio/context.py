"""What every route of the studio shares: its configuration, the library, the job queue and the
preview cache (one `Studio` on `app.state`), the access-token check, lookups that answer 404, and
the one check of a requested model (jobs and previews accept the same)."""

from __future__ import annotations

import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from .. import extras
from ..errors import SRError
from ..filter.formats import output_size
from ..media.job import Job as MediaJob
from ..media.job import check_output_size
from ..media.tools import open_video
from ..models import REGISTRY, resolve
from ..models.catalog import catalog
from .job_queue import JobQueue
from .library import Job, Library, Video, valid_id
from .previews import Previews
from .uploads import discard

SCALES = (1, 8)  # the scales a request may name, and the sides of an output size in pixels
SIDES = (16, 8192)


def check_model(model: str, scale: int) -> None:
    """A 422 unless `model` is a registry name with an installed network at `scale`. Never a
    path: a client must learn nothing about the server's files, so the reasons name only what
    the client sent and /api/models (what this server has)."""
    if model not in REGISTRY:
        raise HTTPException(422, f"unknown model {model!r}: name one of the models listed at /api/models.")
    if scale not in REGISTRY[model]:
        have = ", ".join(f"x{s}" for s in sorted(REGISTRY[model]))
        raise HTTPException(422, f"model {model!r} has no x{scale} network (it has {have}); pass height= or "
                            "width= for other output sizes.")
    try:
        resolve(model, scale)
    except SRError:  # its message says where the weights were looked for: server paths
        row = next(row for row in catalog() if (row["name"], row["scale"]) == (model, scale))
        if row["get"] == extras.install_line("torch"):  # (its file is in place: only PyTorch is missing)
            raise HTTPException(422, f"model {model!r} x{scale} cannot run on this server: its file runs on "
                                "PyTorch, whose [torch] extra the server lacks; /api/models lists what runs "
                                "(installed: true).") from None
        raise HTTPException(422, f"model {model!r} x{scale} is not installed on this server; /api/models lists "
                            "what is (installed: true).") from None


@dataclass(frozen=True)
class StudioConfig:
    data: Path
    jobs: int = 1
    """Chunks of a job at once (jobs themselves run one after another)."""
    token: str | None = None
    max_upload_mb: int = 2048
    max_queued: int = 20
    upload_idle_s: float = 60.0
    """Seconds an upload's body may send nothing before it is given up (408)."""
    keep_days: float | None = None
    """Days a finished job (and its result) is kept after it ends, and an upload after it arrives
    once no job of it is left; None keeps everything."""


@dataclass
class Studio:
    """The server's state: made once by `create_app`, reached by every route as a dependency."""

    config: StudioConfig
    library: Library
    jobs: JobQueue
    previews: Previews
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the server is told to stop: open event streams end (uvicorn waits for them)."""

    def video_or_404(self, video_id: str) -> Video:
        video = self.library.video(video_id) if valid_id(video_id) else None
        if video is None:
            raise HTTPException(404, f"no video {video_id!r}.")
        return video

    def job_or_404(self, job_id: str) -> Job:
        job = self.library.job(job_id) if valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}.")
        return job

    def remove_job(self, job: Job) -> None:
        """Stop the job if it runs, then remove its files and forget it (the files first: on a full
        disk the database may need the space they free)."""
        if job.state in ("queued", "running"):
            self.jobs.cancel(job.id)
            self.jobs.wait_stopped(job.id)
        discard(self.library.job_dir(job.id))
        self.library.remove_job(job.id)

    def remove_video(self, video: Video) -> None:
        """Remove a video with its jobs (running ones stopped), its previews and its files (the files
        before the record: on a full disk the database may need the space they free)."""
        for job in self.library.jobs(video.id):
            self.remove_job(job)
        self._remove_files(video)
        self.library.remove_video(video.id)

    def remove_unused_video(self, video: Video) -> bool:
        """Remove a video that no job names, its record first: a job made meanwhile keeps it (True if it
        went)."""
        if not self.library.remove_video_without_jobs(video.id):
            return False
        self._remove_files(video)
        return True

    def remove_ended_job(self, job: Job, before: float) -> bool:
        """Remove a job that ended before `before`, its record first: one retried meanwhile stays (True
        if it went)."""
        if not self.library.remove_job_ended_before(job.id, before):
            return False
        discard(self.library.job_dir(job.id))
        return True

    def _remove_files(self, video: Video) -> None:
        self.previews.forget(video.id)
        discard(self.library.video_dir(video.id))

    def check_output(self, video: Video, settings: dict[str, Any]) -> None:
        """A 422 now for an output size the job would refuse when it starts (chroma steps, codec
        limits, memory), in the API's words."""
        if not video.file.is_file():  # (said without its path: a client learns nothing of the server's files)
            raise HTTPException(409, f"the file of video {video.id} ({video.name}) is gone from the server: delete "
                                "the video and upload it again.")
        job = MediaJob(input=video.file, output=Path("out.mkv"), overwrite=True, **settings)
        try:
            width, height = output_size(open_video(video.file), job.scale, job.width, job.height)
            check_output_size(job, width, height)
        except SRError as error:
            raise HTTPException(422, in_field_names(error.message)) from None


def in_field_names(message: str) -> str:
    """A message that names the command line's options (`--num-streams`) in the API's field names
    (`num_streams`)."""
    return re.sub(r"--([a-z][a-z-]*)", lambda option: option[1].replace("-", "_"), message)


def current_studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


StudioDep = Annotated[Studio, Depends(current_studio)]


TOKEN_COOKIE = "vs_sr_token"  # and a suffix: the page's port (cookies are shared by a host's ports)


def _token_cookies(request: Request) -> list[str]:
    """The page's token cookies (one per studio a browser uses on this host), as the page wrote them
    (percent-encoded)."""
    return [urllib.parse.unquote(value) for name, value in request.cookies.items() if name.startswith(TOKEN_COOKIE)]


def _matches(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


def authorised(request: Request, studio: StudioDep, access_token: Annotated[str | None, Query()] = None) -> None:
    """With a token set, every API call carries it: `Authorization: Bearer TOKEN`, `access_token=TOKEN`
    where a client cannot send headers, or, to read, the page's cookie (its images and downloads)."""
    token = studio.config.token
    if token is None:
        return
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    # The page's cookie counts for reading only (its preview image and download link): a request
    # that changes something must carry the token itself, which no other site's page can make it send.
    bearer = scheme.lower() == "bearer"  # (schemes are case-blind)
    if not bearer and not access_token and request.method in ("GET", "HEAD"):
        if any(_matches(cookie, token) for cookie in _token_cookies(request)):
            return
    if not _matches(credentials.strip() if bearer else access_token or "", token):
        raise HTTPException(401, "this server needs its access token (Authorization: Bearer ...).",
                            headers={"WWW-Authenticate": "Bearer"})


GUARD = [Depends(authorised)]
