"""Putting an output together: the encoded video part(s) joined and given the source's frame
times (mkvmerge), the other tracks taken whole or cut to the frame range, and the final mux.

Every file here lives in the job's work folder; only the final file goes to the caller's target.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .chapters import chapters_for_range
from .ffmpeg import Input, Source, cut_command, ffmpeg_base, mux_command
from .job import Job, OutputPlan
from .probe import Media, probe
from .processes import run_tool
from .subtitles import cut_text_subtitles, is_text
from .tools import find_tool
from .tracks import Carried


def join_video(parts: Sequence[Path], plan: OutputPlan, folder: Path) -> Path:
    """The encoded parts (in frame order) as one video track with the source's frame times.

    mkvmerge appends the parts and applies a timecodes v2 file: a variable frame rate is kept, and
    chunk borders get exact times instead of the drift of concatenating by nominal durations.
    """
    timecodes = folder / "timecodes.txt"
    plan.timeline.write_timecodes(timecodes, plan.first, plan.last)
    # --timestamps applies to the first file's track, which the appended parts continue. Microseconds, not
    # Matroska's default milliseconds: an MP4 output takes the times from here (ffmpeg writes Matroska's own).
    return append_parts(parts, folder / "video.mkv", ["--timestamp-scale", "1000", "--timestamps",
                                                      f"0:{timecodes.resolve()}"],
                        "joining the video and applying the frame times")


def append_parts(parts: Sequence[Path], target: Path, options: Sequence[str] = (),
                 doing: str = "joining the video") -> Path:
    """The video parts (in frame order) appended into one Matroska track at `target` (mkvmerge);
    without `options` it keeps the parts' own constant rate."""
    files: list[str] = []
    for part in parts:
        files += ["+", str(part.resolve())] if files else [str(part.resolve())]
    run_tool([find_tool("mkvmerge"), "--quiet", "--output", str(target.resolve()), *options, *files], doing)
    return target


def mux(job: Job, plan: OutputPlan, media: Media, folder: Path, target: Path) -> list[Carried]:
    """The final file at `target`: the joined video (folder/video.mkv, copied) with every carried
    track. Returns the tracks it holds after the video; notes on what a frame range did to them (a
    subtitle track left empty) go to `plan.tracks.notes`."""
    video_delay = media.video.start_time - media.start_time
    inputs = [Input(folder / "video.mkv", offset=0.0 if plan.ranged else video_delay), Input(job.input)]
    if plan.ranged:
        sources = _range_sources(job, plan, media, folder, inputs)
    else:
        sources = [(Source(1, c.track.index), c) for c in plan.tracks.carried]
    chapters_input = 1
    if plan.ranged and media.chapters:
        chapters = folder / "chapters.txt"
        chapters.write_text(chapters_for_range(media, plan), encoding="utf-8")
        inputs.append(Input(chapters, format="ffmetadata"))
        chapters_input = len(inputs) - 1
    run_tool(mux_command(job, media, job.output_muxer, inputs, sources, chapters_input, target,
                         plan.timeline.rate), "writing the output")
    return [carried for _, carried in sources]


def _range_sources(job: Job, plan: OutputPlan, media: Media, folder: Path,
                   inputs: list[Input]) -> list[tuple[Source, Carried]]:
    """For a frame range, each carried track from a cut: one packet cut of the audio, bitmap
    subtitles and attachments, and an edited copy of each text subtitle track (added to `inputs`)."""
    carried = plan.tracks.carried
    found: dict[int, tuple[Source, Carried]] = {}
    packets = [i for i, c in enumerate(carried) if not (c.track.kind == "subtitle" and is_text(c.track.codec))]
    if packets:
        cut = folder / "tracks.mkv"
        run_tool(cut_command(job, plan, media, [carried[i].track.index for i in packets], cut),
                 "cutting the other tracks to the frame range")
        inputs.append(Input(cut, offset=_start(cut)))
        for position, i in enumerate(packets):
            found[i] = (Source(len(inputs) - 1, position), carried[i])
    for i, item in enumerate(carried):
        if i in found:
            continue
        edited, events = cut_text_subtitles(ffmpeg_base(), job.input, item.track.index, item.track.codec,
                                            plan.begin, plan.end, folder)
        if not events:
            plan.tracks.notes.append(f"subtitle #{item.track.index}: no event within the frame range; kept as an "
                                     "empty track")
        inputs.append(Input(edited, offset=_start(edited)))
        found[i] = (Source(len(inputs) - 1, 0), item.rewritten(job.output_muxer))
    return [found[i] for i in sorted(found)]


def _start(path: Path) -> float:
    """Where a work file's content starts on the range's clock (ffmpeg would move it to 0)."""
    return probe(path).start_time
