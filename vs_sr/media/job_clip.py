"""The clip vspipe renders for a job: the source, deinterlaced if asked, through `Upscale`, as
YUV (y4m carries nothing else) in the chroma layout and bit depth the codec takes. Runs inside
vspipe: `media.script` calls `job_clip`."""

from __future__ import annotations

from collections.abc import Mapping

import vapoursynth as vs

from ..devices import cpu_count
from ..filter import Upscale
from ..filter.formats import default_matrix
from .codecs import CODECS, SUBSAMPLING
from .job import Job
from .tools import open_video


def job_clip(arguments: Mapping[str, str | None]) -> vs.VideoNode:
    """The clip vspipe outputs for the job `Job.filter_arguments` sent (see `media.script`), in the
    pixel layout its codec takes."""
    job = Job.from_script_arguments(arguments)
    vs.core.num_threads = job_threads()
    source = deinterlaced(open_video(str(job.input)), job.deinterlace)
    chroma, depth = CODECS[job.codec].layout(job.profile, job.depth, source.format.bits_per_sample)
    clip = Upscale(deeper(source, depth), job.model, job.scale, backend=job.backend, precision=job.precision,
                   tile=job.tile, overlap=job.overlap, num_streams=job.num_streams, width=job.width, height=job.height,
                   server=job.server, noise=job.noise)
    return in_layout(clip, chroma, depth)


def job_threads() -> int:
    """VapourSynth threads for a job: one more than the cores. A frame in flight parks a thread in
    the filter's callback while the runtime's own threads compute it; the extra thread decodes and
    converts the next frames meanwhile (measured 1-3% faster with x264 on 2 cores, where the cores
    were otherwise idle for a few percent of the run: docs/benchmarks.md, "The same case later the
    same day")."""
    return cpu_count() + 1


def deeper(clip: vs.VideoNode, depth: int) -> vs.VideoNode:
    """The source at `depth` bits when that is more than it has (an exact conversion): the
    network's output is then rounded to the output's depth, not to the source's."""
    fmt = clip.format
    if fmt.sample_type == vs.INTEGER and fmt.bits_per_sample < depth:
        return clip.resize.Point(format=fmt.replace(bits_per_sample=depth).id)
    return clip


def in_layout(clip: vs.VideoNode, chroma: str | None, depth: int) -> vs.VideoNode:
    """YUV (y4m carries nothing else; RGB converts with the default matrix) with the chroma layout
    (None: the clip's) and bit depth the encoder takes."""
    fmt = clip.format
    if fmt.color_family == vs.GRAY:
        return clip if fmt.bits_per_sample == depth else clip.resize.Point(format=fmt.replace(bits_per_sample=depth).id)
    subsampling = SUBSAMPLING[chroma] if chroma else (fmt.subsampling_w, fmt.subsampling_h)
    target = vs.core.query_video_format(vs.YUV, vs.INTEGER, depth, *subsampling)
    if target.id == fmt.id:
        return clip
    matrix = {"matrix": default_matrix(clip.width, clip.height)} if fmt.color_family == vs.RGB else {}
    return clip.resize.Spline36(format=target.id, **matrix)


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
