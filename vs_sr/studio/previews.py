"""Before/after stills: a source frame (bicubic to the output size) beside the model's output for
the same frame, as PNG. Frame-accurate random access through the filter itself; no render."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np
import vapoursynth as vs

from ..errors import SRError
from ..filter import Upscale
from ..filter.formats import to_rgbs
from ..media.job_clip import deinterlaced
from ..media.tools import open_video
from .library import Video

CACHED_GRAPHS = 4  # open filter graphs kept (each holds its inference sessions)


class Previews:
    def __init__(self) -> None:
        self._graphs: OrderedDict[tuple[str, str, int, int | None, int | None], vs.VideoNode] = OrderedDict()
        self._lock = threading.Lock()

    def png(self, video: Video, frame: int, model: str, scale: int, height: int | None = None,
            width: int | None = None) -> bytes:
        if not 0 <= frame < video.frames:
            raise SRError(f"frame {frame} is outside the video's 0-{video.frames - 1}.")
        side_by_side = self._graph(video, model, scale, height, width)
        rendered = side_by_side.get_frame(frame)
        image = np.stack([np.asarray(rendered[p]) for p in range(3)], axis=-1)
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(image, "RGB").save(buffer, format="PNG")
        return buffer.getvalue()

    def forget(self, video_id: str) -> None:
        """Close the graphs of a video being deleted: each holds its file open, and the disk space a
        deleted file takes is freed only when the last holder closes it."""
        with self._lock:
            for key in [key for key in self._graphs if key[0] == video_id]:
                del self._graphs[key]

    def _graph(self, video: Video, model: str, scale: int, height: int | None, width: int | None) -> vs.VideoNode:
        key = (video.id, model, scale, height, width)
        with self._lock:
            if key in self._graphs:
                self._graphs.move_to_end(key)
                return self._graphs[key]
        source = deinterlaced(open_video(video.file), "bwdif")  # as a job makes it (its default, "deinterlace")
        upscaled = Upscale(source, model, scale, width=width, height=height)
        # Both through the filter's own conversion to RGB (frame props, defaults by resolution).
        before = to_rgbs(source).resize.Bicubic(upscaled.width, upscaled.height, format=vs.RGB24)
        after = to_rgbs(upscaled).resize.Bicubic(format=vs.RGB24, dither_type="error_diffusion")
        graph = vs.core.std.StackHorizontal([before, after])
        with self._lock:
            self._graphs[key] = graph
            while len(self._graphs) > CACHED_GRAPHS:
                self._graphs.popitem(last=False)
        return graph
