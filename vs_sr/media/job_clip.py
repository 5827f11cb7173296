"""The clip vspipe renders for a job: the source, deinterlaced if asked, through `Upscale`, as
YUV (y4m carries nothing else). Runs inside vspipe: `media.script` calls `job_clip`."""

from __future__ import annotations

from collections.abc import Mapping

import vapoursynth as vs

from ..filter import Upscale
from ..filter.formats import default_matrix
from .job import Job
from .tools import open_video


def job_clip(arguments: Mapping[str, str | None]) -> vs.VideoNode:
    """The clip vspipe outputs for the job `Job.filter_arguments` sent (see `media.script`)."""
    job = Job.from_script_arguments(arguments)
    clip = deinterlaced(open_video(str(job.input)), job.deinterlace)
    clip = Upscale(clip, job.model, job.scale, backend=job.backend, precision=job.precision, tile=job.tile,
                   overlap=job.overlap, num_streams=job.num_streams, width=job.width, height=job.height,
                   server=job.server, noise=job.noise)
    if clip.format.color_family == vs.RGB:  # y4m carries YUV only
        yuv = clip.format.replace(color_family=vs.YUV).id
        clip = clip.resize.Spline36(format=yuv, matrix=default_matrix(clip.width, clip.height))
    return clip


def deinterlaced(clip: vs.VideoNode, method: str | None) -> vs.VideoNode:
    """The clip with interlaced frames deinterlaced (bwdif, same rate, each frame's own field
    order) or marked progressive; as is without a method."""
    if method == "progressive":
        return clip.std.SetFieldBased(0)
    if method == "bwdif":
        tff = clip.bwdif.Bwdif(field=1).std.SetFieldBased(0)
        bff = clip.bwdif.Bwdif(field=0).std.SetFieldBased(0)
        return clip.std.FrameEval(lambda n, f: bff if f.props.get("_FieldBased") == 1 else tff if
                                  f.props.get("_FieldBased") == 2 else clip, prop_src=clip)
    return clip
