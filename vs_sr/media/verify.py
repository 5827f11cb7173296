"""The check before an output is renamed into place: the frames, size, frame times and audio the
plan promised."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from ..children import run_child
from ..errors import SRError
from .job import OutputPlan, expected_audio
from .probe import Media, packet_duration, packet_span, probe
from .tools import file_url, find_tool

TIME_TOLERANCE = 0.002  # seconds: Matroska stores milliseconds


def verify(target: Path, plan: OutputPlan, media: Media) -> None:
    times = frame_times(target)  # one read of the packets gives the frame count and the frame times
    if len(times) != plan.frames:
        raise SRError(f"the output has {len(times)} frames, expected {plan.frames}; nothing was written.")
    written = probe(target)
    width, height = written.frame_size
    if (width, height) != (plan.width, plan.height):
        raise SRError(f"the output is {width}x{height}, expected {plan.width}x{plan.height}; nothing was written.")
    _check_frame_times(times, plan)
    _check_audio(written, plan, media)


def frame_times(path: Path) -> list[float]:
    """Presentation times of the first video track's frames, in display order."""
    done = run_child([find_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=pts_time", "-of", "csv=p=0", file_url(path)], capture_output=True, text=True,
                     stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SRError(f"cannot read the frame times of {path}: {done.stderr.strip()}")
    return sorted(float(line.split(",")[0]) for line in done.stdout.split() if line and line[0].isdigit())


def _check_frame_times(times: list[float], plan: OutputPlan) -> None:
    expected = plan.timeline.starts[plan.first:plan.last + 1]
    for n, (got, want) in enumerate(zip(times, expected, strict=True)):
        if abs((got - times[0]) - (want - expected[0])) > TIME_TOLERANCE:
            raise SRError(f"output frame {n} is shown at {got - times[0]:.3f} s, expected {want - expected[0]:.3f} s; "
                          "nothing was written.")


def _check_audio(written: Media, plan: OutputPlan, media: Media) -> None:
    audio = written.of_kind("audio")
    if len(audio) != len(plan.tracks.audio):
        raise SRError(f"the output has {len(audio)} audio tracks, expected {len(plan.tracks.audio)}; "
                      "nothing was written.")
    frame = max(b - a for a, b in zip((plan.begin, *plan.timeline.starts[plan.first + 1:plan.last + 1]),
                                      (*plan.timeline.starts[plan.first + 1:plan.last + 1], plan.end), strict=True))
    for track, source in zip(audio, plan.tracks.audio, strict=True):
        if "mpegts" in media.container:  # (its track durations are ffprobe's guesses: the packets say)
            source = dataclasses.replace(source, duration=packet_span(media.path, source.index) or source.duration)
        expected = expected_audio(source, plan)
        # A cut keeps or drops whole packets of the source (21 ms of AAC, 104 ms of FLAC), a track re-encoded
        # starts with its encoder's priming, and a container that stores no packet durations ends a copy
        # where its last packet starts: off by at most a packet of either, beside a frame.
        slack = frame + max(packet_duration(written.path, track.index), packet_duration(media.path, source.index))
        if expected is not None and track.duration is not None and abs(track.duration - expected) > slack:
            raise SRError(f"audio track {track.index} lasts {track.duration:.3f} s, expected {expected:.3f} s "
                          "(more than a frame off); nothing was written.")
        # In sync: the audio starts where it did against the video (clipped to the range).
        shift = (track.start_time - written.video.start_time) - (max(source.start_time, plan.begin) - plan.begin
                                                                  if plan.ranged else source.start_time - media.video.start_time)
        if abs(shift) > slack:
            raise SRError(f"audio track {track.index} is {shift:+.3f} s out of sync with the video; nothing was written.")
