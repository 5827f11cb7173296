"""Routes for upscale jobs: create, list, look at, follow (server-sent events), cancel, download, delete."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..atomic import fitting_name
from ..media.codecs import CRF_RANGE
from ..models import DEFAULT_MODEL
from .context import GUARD, SCALES, SIDES, Studio, StudioDep, check_model
from .library import new_id

EVENT_INTERVAL = 0.5  # seconds between looks at a job's progress for its event stream
KEEP_ALIVE_S = 15.0  # a comment line this often on a quiet stream: proxies end one silent for 60 s

router = APIRouter(prefix="/api/jobs", dependencies=GUARD)


class JobRequest(BaseModel):
    # strict: JSON's own types (a true is no scale); forbid: a misspelt field ("heigth") is an error, not a default
    model_config = ConfigDict(extra="forbid", strict=True)

    video: str
    model: str = DEFAULT_MODEL
    scale: int = Field(4, ge=SCALES[0], le=SCALES[1])
    width: int | None = Field(None, ge=SIDES[0], le=SIDES[1])
    height: int | None = Field(None, ge=SIDES[0], le=SIDES[1])
    codec: Literal["x264", "x265", "ffv1"] = "x264"
    crf: int | None = Field(None, ge=CRF_RANGE[0], le=CRF_RANGE[1])
    # bwdif deinterlaces only the frames flagged interlaced (a progressive video passes unchanged): uploads from
    # broadcast or DVD work without a choice the command line asks for; "progressive" trusts the pixels instead.
    deinterlace: Literal["bwdif", "progressive"] = "bwdif"


@router.post("")
def create_job(request: JobRequest, studio: StudioDep) -> dict[str, Any]:
    video = studio.video_or_404(request.video)
    if studio.library.queued() >= studio.config.max_queued:  # at once, before the checks that open the video
        raise _queue_full(studio)  # (the record below is what holds the limit, under requests arriving together)
    check_model(request.model, request.scale)
    if request.codec == "ffv1" and request.crf is not None:
        raise HTTPException(422, "ffv1 is lossless: crf does not apply.")
    studio.check_output(video, request.model_dump(exclude={"video"}))
    job_id = new_id()
    if not studio.library.add_job(job_id, video.id, request.model_dump(exclude={"video"}), studio.config.max_queued):
        raise _queue_full(studio)
    studio.jobs.submit(job_id)
    return studio.jobs.view_of(studio.job_or_404(job_id))


LIMIT = Query(None, ge=1, description="only the newest LIMIT (the X-Total-Count header says how many there are)")


@router.get("")
def list_jobs(studio: StudioDep, response: Response, limit: int | None = LIMIT) -> list[dict[str, Any]]:
    """The jobs, oldest first (with `limit`, the newest of them)."""
    response.headers["X-Total-Count"] = str(studio.library.count_jobs())
    jobs = studio.library.jobs(limit=limit)
    videos = studio.library.videos_of(jobs)
    return [studio.jobs.view(job, videos.get(job.video)) for job in jobs]


@router.get("/{job_id}")
def get_job(job_id: str, studio: StudioDep) -> dict[str, Any]:
    return studio.jobs.view_of(studio.job_or_404(job_id))


@router.get("/{job_id}/events")
async def job_events(job_id: str, studio: StudioDep) -> StreamingResponse:
    studio.job_or_404(job_id)
    # X-Accel-Buffering: nginx (and proxies that follow it) pass each event on as it comes, not in 4 KB lumps
    return StreamingResponse(_events(studio, job_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(studio: Studio, job_id: str) -> AsyncIterator[str]:
    """The job's view each time it changes, until it is no longer queued or running, or the server
    stops."""
    last, said = None, time.monotonic()
    while not studio.stopping.is_set():
        job = studio.library.job(job_id)
        if job is None:
            return
        view = await asyncio.to_thread(studio.jobs.view_of, job)
        if view != last:
            yield f"data: {json.dumps(view)}\n\n"
            last, said = view, time.monotonic()
        elif time.monotonic() - said >= KEEP_ALIVE_S:  # (a job waiting behind a long one says nothing for hours)
            yield ": waiting\n\n"
            said = time.monotonic()
        if view["state"] not in ("queued", "running"):
            return
        await asyncio.sleep(EVENT_INTERVAL)


@router.post("/{job_id}/cancel")
async def cancel_job(job_id: str, studio: StudioDep) -> dict[str, Any]:
    job = studio.job_or_404(job_id)
    if job.state in ("queued", "running"):
        studio.jobs.cancel(job.id)
        await asyncio.to_thread(studio.jobs.wait_stopped, job.id)
    return studio.jobs.view_of(studio.job_or_404(job_id))


@router.post("/{job_id}/retry")
def retry_job(job_id: str, studio: StudioDep) -> dict[str, Any]:
    """A failed or cancelled job again (after a full disk, say): what it finished is kept."""
    job = studio.job_or_404(job_id)
    if job.state not in ("failed", "cancelled"):
        raise HTTPException(409, f"job {job_id} is {job.state}: only a failed or cancelled job is retried.")
    if studio.library.video(job.video) is None:
        raise HTTPException(409, f"the video of job {job_id} was deleted: upload it again and make a new job.")
    if not studio.jobs.retry(job.id, studio.config.max_queued):
        raise _queue_full(studio)
    return studio.jobs.view_of(studio.job_or_404(job_id))


def _queue_full(studio: Studio) -> HTTPException:
    limit = studio.config.max_queued
    waiting = f"{limit} jobs are waiting" if limit != 1 else "1 job is waiting"
    return HTTPException(429, f"{waiting} already; try again when one is done.")


@router.head("/{job_id}/result", include_in_schema=False)  # (download managers ask HEAD first)
@router.get("/{job_id}/result")
def result(job_id: str, studio: StudioDep) -> FileResponse:
    job = studio.job_or_404(job_id)
    path = studio.jobs.result(job)
    if job.state != "done" or not path.is_file():
        raise HTTPException(409, f"job {job_id} has no result yet (it is {job.state}).")
    video = studio.library.video(job.video)
    stem = (Path(video.name).stem if video else "") or "video"
    # (a name that fits a file system: an upload's own may be near its limit, and ours adds to it)
    return FileResponse(path, media_type="video/x-matroska",
                        filename=f"{fitting_name(stem, len(DOWNLOAD_SUFFIX))}{DOWNLOAD_SUFFIX}")


DOWNLOAD_SUFFIX = "-upscaled.mkv"


@router.delete("/{job_id}")
def delete_job(job_id: str, studio: StudioDep) -> dict[str, bool]:
    studio.remove_job(studio.job_or_404(job_id))
    return {"deleted": True}
