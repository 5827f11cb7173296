"""Which input tracks go into the output, and how: copied where the container can hold them,
re-encoded or converted (with a note) where it cannot, dropped (with a note) where nothing fits."""

from __future__ import annotations

from dataclasses import dataclass, field

from .probe import Media, Track

# What MP4/MOV can carry as is; everything else is re-encoded (audio) or converted (text subtitles).
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
TEXT_SUBTITLES = {"subrip", "ass", "ssa", "mov_text", "webvtt", "text"}


@dataclass
class TrackPlan:
    """How every input track is carried, output track 0 being the upscaled video."""

    maps: list[int] = field(default_factory=list)
    """Input track indices carried over, in output order after the video."""
    codecs: list[str] = field(default_factory=list)
    """ffmpeg codec options for the carried tracks."""
    notes: list[str] = field(default_factory=list)
    audio: list[Track] = field(default_factory=list)
    """The carried audio tracks, in output order."""
    subtitles: int = 0


def plan_tracks(media: Media, muxer: str) -> TrackPlan:
    plan = TrackPlan()
    mp4 = muxer in ("mp4", "mov")
    for track in media.tracks:
        out = len(plan.maps) + 1  # output index this track would get
        label = f"{track.kind} #{track.index} ({track.codec})"
        if track.kind == "video":
            continue  # the first is replaced by the upscaled video; others (cover art, angles) are not carried
        if track.kind == "audio":
            if mp4 and track.codec not in MP4_AUDIO:
                plan.codecs += [f"-c:{out}", "aac", f"-b:{out}", "192k"]
                plan.notes.append(f"{label}: re-encoded to AAC ({muxer} cannot hold {track.codec})")
            else:
                plan.codecs += [f"-c:{out}", "copy"]
            plan.audio.append(track)
        elif track.kind == "subtitle":
            if mp4 and track.codec not in TEXT_SUBTITLES:
                plan.notes.append(f"{label}: dropped ({muxer} holds text subtitles only; use .mkv to keep it)")
                continue
            codec = "mov_text" if mp4 and track.codec != "mov_text" else "copy"
            plan.codecs += [f"-c:{out}", codec]
            if codec != "copy":
                plan.notes.append(f"{label}: converted to mov_text ({muxer} subtitles); styling may be lost")
            plan.subtitles += 1
        elif track.kind == "attachment":
            if mp4:
                plan.notes.append(f"{label}: dropped ({muxer} cannot hold attachments; use .mkv to keep it)")
                continue
            plan.codecs += [f"-c:{out}", "copy"]
        else:
            plan.notes.append(f"{label}: not carried over")
            continue
        plan.maps.append(track.index)
    return plan
