"""The before/after still of one frame of an uploaded video, as PNG."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from ..errors import SRError
from ..models import DEFAULT_MODEL
from .context import GUARD, StudioDep

router = APIRouter(prefix="/api/videos", dependencies=GUARD)


@router.get("/{video_id}/preview")
def preview(video_id: str, studio: StudioDep, frame: int = 0, model: str = DEFAULT_MODEL, scale: int = 4,
            height: int | None = None) -> Response:
    video = studio.video_or_404(video_id)
    try:
        return Response(studio.previews.png(video, frame, model, scale, height), media_type="image/png")
    except SRError as error:
        raise HTTPException(422, error.message) from None
