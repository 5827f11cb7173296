"""The check before an output is renamed into place: the frames, size and audio the plan promised."""

from __future__ import annotations

from pathlib import Path

from ..errors import SRError
from .job import OutputPlan, expected_audio
from .probe import Media, count_frames, probe


def verify(target: Path, plan: OutputPlan, media: Media) -> None:
    frames = count_frames(target)
    if frames != plan.frames:
        raise SRError(f"the output has {frames} frames, expected {plan.frames}; nothing was written.")
    written = probe(target)
    video = written.video
    if (video.info["width"], video.info["height"]) != (plan.width, plan.height):
        raise SRError(f"the output is {video.info['width']}x{video.info['height']}, expected "
                      f"{plan.width}x{plan.height}; nothing was written.")
    audio = written.of_kind("audio")
    if len(audio) != len(plan.tracks.audio):
        raise SRError(f"the output has {len(audio)} audio tracks, expected {len(plan.tracks.audio)}; "
                      "nothing was written.")
    frame = float(1 / plan.rate)
    for track, source in zip(audio, plan.tracks.audio, strict=True):
        expected = expected_audio(source, media, plan)
        if expected is not None and track.duration is not None and abs(track.duration - expected) > frame:
            raise SRError(f"audio track {track.index} lasts {track.duration:.3f} s, expected {expected:.3f} s "
                          "(more than a frame off); nothing was written.")
