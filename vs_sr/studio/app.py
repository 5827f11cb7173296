"""The studio's web app: the API (uploads, jobs, live progress, previews, results) and the page.

Routes and fields are a contract (see the README): the page uses nothing else. Errors are 4xx
answers whose `detail` says, in words a person understands, what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..batch.executors import Executor
from ..errors import SRError
from ..media.codecs import CRF_RANGE
from ..models import REGISTRY, resolve
from ..models.catalog import catalog
from .jobs import JobQueue
from .library import Library, new_id, valid_id
from .previews import Previews
from .uploads import UploadError, describe, discard, receive

STATIC = Path(__file__).with_name("static")
EVENT_INTERVAL = 0.5  # seconds between looks at a job's progress for its event stream


@dataclass(frozen=True)
class StudioConfig:
    data: Path
    jobs: int = 1
    """Chunks of a job at once (jobs themselves run one after another)."""
    token: str | None = None
    max_upload_mb: int = 2048
    max_queued: int = 20


class JobRequest(BaseModel):
    video: str
    model: str = "realesr-animevideov3"
    scale: int = Field(4, ge=1, le=8)
    width: int | None = Field(None, ge=16, le=8192)
    height: int | None = Field(None, ge=16, le=8192)
    codec: Literal["x264", "x265", "ffv1"] = "x264"
    crf: int | None = Field(None, ge=CRF_RANGE[0], le=CRF_RANGE[1])


def create_app(config: StudioConfig, executor: Executor | None = None) -> FastAPI:
    library = Library(config.data)
    jobs = JobQueue(library, config.jobs, executor)
    previews = Previews()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        await asyncio.to_thread(jobs.shutdown)
        library.close()

    app = FastAPI(title="vs-sr studio", version="1", lifespan=lifespan,
                  description="Upload a video, upscale it with a super-resolution network, watch, compare, download.")

    def authorised(request: Request, access_token: Annotated[str | None, Query()] = None) -> None:
        """With a token set, every API call carries it: `Authorization: Bearer TOKEN`, or
        `access_token=TOKEN` where a browser cannot send headers (downloads, images)."""
        if config.token is None:
            return
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else access_token or ""
        if not secrets.compare_digest(given.encode(), config.token.encode()):
            raise HTTPException(401, "this server needs its access token (Authorization: Bearer ...).",
                                headers={"WWW-Authenticate": "Bearer"})

    guard = [Depends(authorised)]

    def video_or_404(video_id: str) -> Any:
        video = library.video(video_id) if valid_id(video_id) else None
        if video is None:
            raise HTTPException(404, f"no video {video_id!r}.")
        return video

    def job_or_404(job_id: str) -> Any:
        job = library.job(job_id) if valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}.")
        return job

    @app.get("/api/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/models", dependencies=guard)
    def models() -> list[dict[str, Any]]:
        return catalog()

    @app.post("/api/videos", dependencies=guard)
    async def upload(request: Request) -> dict[str, Any]:
        limit = config.max_upload_mb * 2**20
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise HTTPException(413, f"the file is larger than the server's limit of {config.max_upload_mb} MB.")
        video_id = new_id()
        folder = library.video_dir(video_id)
        folder.mkdir(parents=True)
        try:
            path, name = await receive(request.stream(), request.headers.get("content-type", ""), folder, limit)
            video = await asyncio.to_thread(describe, video_id, name, path)
        except UploadError as error:
            discard(folder)
            raise HTTPException(error.status, error.reason) from None
        except BaseException:
            discard(folder)
            raise
        library.add_video(video)
        return video.public()

    @app.get("/api/videos", dependencies=guard)
    def videos() -> list[dict[str, Any]]:
        return [video.public() for video in library.videos()]

    @app.delete("/api/videos/{video_id}", dependencies=guard)
    def delete_video(video_id: str) -> dict[str, bool]:
        video = video_or_404(video_id)
        for job in library.jobs(video.id):
            remove_job(job)
        library.remove_video(video.id)
        discard(library.video_dir(video.id))
        return {"deleted": True}

    @app.get("/api/videos/{video_id}/preview", dependencies=guard)
    def preview(video_id: str, frame: int = 0, model: str = "realesr-animevideov3", scale: int = 4,
                height: int | None = None) -> Response:
        video = video_or_404(video_id)
        try:
            return Response(previews.png(video, frame, model, scale, height), media_type="image/png")
        except SRError as error:
            raise HTTPException(422, error.message) from None

    @app.post("/api/jobs", dependencies=guard)
    def create_job(request: JobRequest) -> dict[str, Any]:
        video = video_or_404(request.video)
        if jobs.queued() >= config.max_queued:
            raise HTTPException(429, f"{config.max_queued} jobs are waiting already; try again when some are done.")
        if request.model not in REGISTRY:
            raise HTTPException(422, f"unknown model '{request.model}'; see /api/models.")
        try:
            resolve(request.model, request.scale)  # the weights are there, the scale exists
        except SRError as error:
            raise HTTPException(422, error.message) from None
        if request.codec == "ffv1" and request.crf is not None:
            raise HTTPException(422, "ffv1 is lossless: crf does not apply.")
        settings = request.model_dump(exclude={"video"})
        job_id = new_id()
        library.add_job(job_id, video.id, settings)
        jobs.submit(job_id)
        return jobs.view(job_or_404(job_id))

    @app.get("/api/jobs", dependencies=guard)
    def list_jobs() -> list[dict[str, Any]]:
        return [jobs.view(job) for job in library.jobs()]

    @app.get("/api/jobs/{job_id}", dependencies=guard)
    def get_job(job_id: str) -> dict[str, Any]:
        return jobs.view(job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/events", dependencies=guard)
    async def job_events(job_id: str) -> StreamingResponse:
        job_or_404(job_id)

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                job = library.job(job_id)
                if job is None:
                    return
                view = await asyncio.to_thread(jobs.view, job)
                if view != last:
                    yield f"data: {json.dumps(view)}\n\n"
                    last = view
                if view["state"] not in ("queued", "running"):
                    return
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/api/jobs/{job_id}/cancel", dependencies=guard)
    async def cancel_job(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        if job.state in ("queued", "running"):
            jobs.cancel(job.id)
            await asyncio.to_thread(jobs.wait_stopped, job.id)
        return jobs.view(job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/result", dependencies=guard)
    def result(job_id: str) -> FileResponse:
        job = job_or_404(job_id)
        path = jobs.result(job)
        if job.state != "done" or not path.is_file():
            raise HTTPException(409, f"job {job_id} has no result yet (it is {job.state}).")
        video = library.video(job.video)
        stem = Path(video.name).stem if video else "video"
        return FileResponse(path, media_type="video/x-matroska", filename=f"{stem}-upscaled.mkv")

    def remove_job(job: Any) -> None:
        if job.state in ("queued", "running"):
            jobs.cancel(job.id)
            jobs.wait_stopped(job.id)
        library.remove_job(job.id)
        discard(library.job_dir(job.id))

    @app.delete("/api/jobs/{job_id}", dependencies=guard)
    def delete_job(job_id: str) -> dict[str, bool]:
        remove_job(job_or_404(job_id))
        return {"deleted": True}

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app

