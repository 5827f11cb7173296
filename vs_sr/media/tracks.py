"""Which input tracks go into the output, and how: copied where the container can hold them,
re-encoded or converted (with a note) where it cannot, dropped (with a note) where nothing fits."""

from __future__ import annotations

from dataclasses import dataclass, field

from .probe import Media, Track
from .subtitles import is_text

# What MP4/MOV can carry as is; everything else is re-encoded (audio) or converted (text subtitles).
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
# WebM holds Opus or Vorbis audio (anything else is re-encoded to Opus) and WebVTT subtitles.
WEBM_AUDIO = {"opus", "vorbis"}
# ffmpeg's encoder for a text subtitle codec, when an edited copy (a frame range) is written back.
TEXT_ENCODERS = {"subrip": "srt", "srt": "srt", "ass": "ass", "ssa": "ssa", "webvtt": "webvtt", "mov_text": "mov_text",
                 "text": "srt"}


@dataclass(frozen=True)
class Carried:
    """One input track in the output: the ffmpeg codec it gets there ('copy' or an encoder)."""

    track: Track
    codec: str
    options: tuple[str, ...] = ()
    """Per-track encoder options, without the track specifier (e.g. ('-b', '192k'))."""

    def rewritten(self, muxer: str) -> Carried:
        """The same track taken from an edited text copy (a cut to a frame range), so encoded again."""
        if self.codec != "copy":
            return self
        return Carried(self.track, {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}.get(muxer) or
                       TEXT_ENCODERS[self.track.codec])


@dataclass
class TrackPlan:
    """The carried tracks in output order (output track 0 is the upscaled video), and notes."""

    carried: list[Carried] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def audio(self) -> list[Track]:
        return [c.track for c in self.carried if c.track.kind == "audio"]

    @property
    def subtitles(self) -> int:
        return sum(c.track.kind == "subtitle" for c in self.carried)


def plan_tracks(media: Media, muxer: str) -> TrackPlan:
    if muxer == "webm":
        return _plan_webm(media)
    plan = TrackPlan()
    mp4 = muxer in ("mp4", "mov")
    for track in media.tracks:
        label = f"{track.kind} #{track.index} ({track.codec})"
        if track.kind == "video":
            continue  # the first is replaced by the upscaled video; others (cover art, angles) are not carried
        if track.kind == "audio":
            if mp4 and track.codec not in MP4_AUDIO:
                plan.carried.append(Carried(track, "aac", ("-b", "192k")))
                plan.notes.append(f"{label}: re-encoded to AAC ({muxer} cannot hold {track.codec})")
            else:
                plan.carried.append(Carried(track, "copy"))
        elif track.kind == "subtitle":
            if mp4 and not is_text(track.codec):
                plan.notes.append(f"{label}: dropped ({muxer} holds text subtitles only; use .mkv to keep it)")
                continue
            codec = "mov_text" if mp4 and track.codec != "mov_text" else "copy"
            plan.carried.append(Carried(track, codec))
            if codec != "copy":
                plan.notes.append(f"{label}: converted to mov_text ({muxer} subtitles); styling may be lost")
        elif track.kind == "attachment":
            if mp4:
                plan.notes.append(f"{label}: dropped ({muxer} cannot hold attachments; use .mkv to keep it)")
                continue
            plan.carried.append(Carried(track, "copy"))
        else:
            plan.notes.append(f"{label}: not carried over")
    return plan


def _plan_webm(media: Media) -> TrackPlan:
    """WebM: Opus/Vorbis audio (others re-encoded to Opus), WebVTT subtitles (other text converted,
    bitmaps dropped), no attachments."""
    plan = TrackPlan()
    for track in media.tracks:
        label = f"{track.kind} #{track.index} ({track.codec})"
        if track.kind == "video":
            continue
        if track.kind == "audio" and track.codec in WEBM_AUDIO:
            plan.carried.append(Carried(track, "copy"))
        elif track.kind == "audio":
            plan.carried.append(Carried(track, "libopus", ("-b", "192k")))
            plan.notes.append(f"{label}: re-encoded to Opus (webm holds Opus or Vorbis audio only)")
        elif track.kind == "subtitle" and is_text(track.codec):
            plan.carried.append(Carried(track, "copy" if track.codec == "webvtt" else "webvtt"))
            if track.codec != "webvtt":
                plan.notes.append(f"{label}: converted to WebVTT (webm subtitles); styling may be lost")
        elif track.kind in ("subtitle", "attachment"):
            plan.notes.append(f"{label}: dropped (webm cannot hold it; use .mkv to keep it)")
        else:
            plan.notes.append(f"{label}: not carried over")
    return plan
