"""Routes for uploaded videos: upload (streamed, capped, probed), list, delete."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from .context import GUARD, StudioDep
from .jobs_api import LIMIT
from .library import new_id
from .uploads import UploadCutOff, UploadError, describe, discard, receive

router = APIRouter(prefix="/api/videos", dependencies=GUARD)
log = logging.getLogger("vs_sr.studio")


@router.post("")
async def upload(request: Request, studio: StudioDep) -> dict[str, Any]:
    limit_mb = studio.config.max_upload_mb
    limit = limit_mb * 2**20
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, f"the file is larger than the server's limit of {limit_mb} MB.")
    video_id = new_id()
    with studio.library.receiving(video_id) as folder:
        folder.mkdir(parents=True)
        try:
            path, name = await receive(request.stream(), request.headers.get("content-type", ""), folder, limit,
                                       studio.config.upload_idle_s, studio.stopping)
            video = await asyncio.to_thread(describe, video_id, name, path)
            if await request.is_disconnected():  # (a proxy that gave up waiting for the probe: the client retries)
                raise UploadCutOff(0, "the client went away while the video was being read (a proxy's timeout?); "
                                   "it was not kept")
            studio.library.add_video(video)  # (a full disk may refuse the record too: the file goes with it)
        except UploadError as error:
            if isinstance(error, UploadCutOff) or error.status == 408:  # the client's doing: one line, no traceback
                log.warning("upload from %s not received: %s", _client(request), error.reason)
            discard(folder)
            raise HTTPException(error.status, error.reason) from None
        except BaseException:
            discard(folder)
            raise
    return video.public()


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "a client"


@router.get("")
def videos(studio: StudioDep, response: Response, limit: int | None = LIMIT) -> list[dict[str, Any]]:
    """The videos, oldest first (with `limit`, the newest of them)."""
    response.headers["X-Total-Count"] = str(studio.library.count_videos())
    return [video.public() for video in studio.library.videos(limit)]


@router.delete("/{video_id}")
def delete_video(video_id: str, studio: StudioDep) -> dict[str, bool]:
    studio.remove_video(studio.video_or_404(video_id))
    return {"deleted": True}
