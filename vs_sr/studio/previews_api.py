"""The before/after still of one frame of an uploaded video, as PNG. It takes the models and
sizes a job takes, nothing else (never a path on the server)."""

from __future__ import annotations

from typing import Annotated

import vapoursynth as vs
from fastapi import APIRouter, HTTPException, Query, Response

from ..errors import one_line
from ..models import DEFAULT_MODEL
from .context import GUARD, SCALES, SIDES, StudioDep, check_model

router = APIRouter(prefix="/api/videos", dependencies=GUARD)


@router.get("/{video_id}/preview")
def preview(video_id: str, studio: StudioDep, frame: Annotated[int, Query(ge=0)] = 0, model: str = DEFAULT_MODEL,
            scale: Annotated[int, Query(ge=SCALES[0], le=SCALES[1])] = 4,
            height: Annotated[int | None, Query(ge=SIDES[0], le=SIDES[1])] = None,
            width: Annotated[int | None, Query(ge=SIDES[0], le=SIDES[1])] = None) -> Response:
    video = studio.video_or_404(video_id)
    check_model(model, scale)
    try:
        return Response(studio.previews.png(video, frame, model, scale, height, width), media_type="image/png")
    except vs.Error as error:  # (a frame's error reaches here as VapourSynth's own, its text one line of ours)
        raise HTTPException(422, one_line(str(error)).removeprefix("vs_sr: ")) from None
