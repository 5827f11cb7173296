"""Which input tracks go into the output, and how: copied where the container can hold them,
re-encoded or converted (with a note) where it cannot, dropped (with a note) where nothing fits.

What the container can hold is decided before any frame is upscaled: by our rules for MP4/MOV
(which audio we copy, text subtitles only, no attachments), then by asking the installed ffmpeg
to start writing the copied tracks into that container (its rules change between versions: FLAC
in MP4 is experimental in 5.1, Opus and FLAC go in MP4 but not in MOV, mov_text not in Matroska).
A track it refuses is converted or dropped here, not found out by the final mux after the encode.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SRError
from .probe import Media, Track
from .processes import run_tool
from .subtitles import is_text
from .tools import file_url, find_tool

# What we copy into MP4/MOV as is (if ffmpeg agrees); everything else is re-encoded (audio) or
# converted (text subtitles).
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
# MOV, the editors' container, also holds uncompressed PCM (an editing intermediate's usual audio).
MOV_AUDIO = MP4_AUDIO | {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_f32le",
                         "pcm_f32be", "pcm_f64le", "pcm_f64be", "pcm_u8"}
# WebM holds Opus or Vorbis audio (anything else is re-encoded to Opus) and WebVTT subtitles.
WEBM_AUDIO = {"opus", "vorbis"}
# ffmpeg's encoder for a text subtitle codec, when an edited copy (a frame range) is written back.
TEXT_ENCODERS = {"subrip": "srt", "srt": "srt", "ass": "ass", "ssa": "ssa", "webvtt": "webvtt", "mov_text": "mov_text",
                 "text": "srt"}
# What a track the container refuses becomes there: (ffmpeg encoder, options, what the note calls it).
AUDIO_FALLBACK = {"mp4": ("aac", ("-b", "192k"), "AAC"), "mov": ("aac", ("-b", "192k"), "AAC"),
                  "matroska": ("flac", (), "FLAC")}
TEXT_FALLBACK = {"mp4": ("mov_text", "mov_text"), "mov": ("mov_text", "mov_text"), "matroska": ("srt", "SubRip")}


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
    for track in media.tracks:
        # The first video is replaced by the upscaled one; others (cover art, angles) are not carried, and said. An
        # MP4's chapter names are a data track of their own: they are carried as chapters, so it needs no note.
        if track.kind == "video":
            _note_other_video(plan, media, track)
        elif not is_chapter_track(media, track):
            _plan_track(plan, track, muxer)
    _convert_refused(plan, media, muxer)
    if muxer in ("mp4", "mov"):
        titled = [_label(c.track) for c in plan.carried if c.track.info.get("tags", {}).get("title")]
        if titled:
            plan.notes.append(f"{', '.join(titled)}: track title not kept ({muxer} has no place for it; .mkv keeps "
                              "it), language kept")
    return plan


def is_chapter_track(media: Media, track: Track) -> bool:
    return bool(media.chapters) and track.kind == "data" and track.codec == "bin_data" and \
        media.container.startswith("mov,mp4")


def _plan_webm(media: Media) -> TrackPlan:
    """WebM: Opus/Vorbis audio (others re-encoded to Opus), WebVTT subtitles (other text converted,
    bitmaps dropped), no attachments."""
    plan = TrackPlan()
    for track in media.tracks:
        label = f"{track.kind} #{track.index} ({track.codec})"
        if track.kind == "video":
            _note_other_video(plan, media, track)
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


def _note_other_video(plan: TrackPlan, media: Media, track: Track) -> None:
    """A video track besides the one upscaled is not carried over: said (cover art went unsaid)."""
    if track.index == media.video.index:
        return
    what = "cover art" if track.info.get("disposition", {}).get("attached_pic") else "another video track"
    plan.notes.append(f"{_label(track)}: {what}, not carried over (vs-sr writes the upscaled video only)")


def _plan_track(plan: TrackPlan, track: Track, muxer: str) -> None:
    label = _label(track)
    mp4 = muxer in ("mp4", "mov")
    if track.kind == "audio":
        if mp4 and track.codec not in (MOV_AUDIO if muxer == "mov" else MP4_AUDIO):
            plan.carried.append(_converted(track, muxer))
            plan.notes.append(f"{label}: re-encoded to AAC ({track.codec} is not an audio codec {muxer} players "
                              "take; use .mkv to keep it)")
        else:
            plan.carried.append(Carried(track, "copy"))
    elif track.kind == "subtitle":
        if mp4 and not is_text(track.codec):
            plan.notes.append(f"{label}: dropped ({muxer} holds text subtitles only; use .mkv to keep it)")
            return
        # MP4/MOV hold text as mov_text only; Matroska holds every text codec but mov_text.
        if (track.codec == "mov_text") == mp4:
            plan.carried.append(Carried(track, "copy"))
            return
        plan.carried.append(_converted(track, muxer))
        plan.notes.append(f"{label}: converted to {TEXT_FALLBACK[muxer][1]} ({muxer} subtitles); styling may be lost")
    elif track.kind == "attachment":
        if mp4:
            plan.notes.append(f"{label}: dropped ({muxer} cannot hold attachments; use .mkv to keep it)")
            return
        plan.carried.append(Carried(track, "copy"))
    else:
        plan.notes.append(f"{label}: not carried over")


def _label(track: Track) -> str:
    return f"{track.kind} #{track.index} ({track.codec})"


def _converted(track: Track, muxer: str) -> Carried:
    """The track re-encoded into what `muxer` holds (audio; text subtitles)."""
    if track.kind == "audio":
        encoder, options, _ = AUDIO_FALLBACK[muxer]
        return Carried(track, encoder, options)
    return Carried(track, TEXT_FALLBACK[muxer][0])


def _convert_refused(plan: TrackPlan, media: Media, muxer: str) -> None:
    """Ask ffmpeg whether `muxer` takes the copied tracks; convert (audio, text) or drop (the rest)
    each one it refuses, with a note."""
    copies = [c.track for c in plan.carried if c.codec == "copy"]
    if not copies or _muxer_takes(media.path, copies, muxer):
        return
    kept: list[Carried] = []
    for item in plan.carried:
        track = item.track
        if item.codec != "copy" or _muxer_takes(media.path, [track], muxer):
            kept.append(item)
        elif track.kind == "audio" or (track.kind == "subtitle" and is_text(track.codec)):
            kept.append(_converted(track, muxer))
            done, name = ("re-encoded", AUDIO_FALLBACK[muxer][2]) if track.kind == "audio" else \
                ("converted", TEXT_FALLBACK[muxer][1])
            plan.notes.append(f"{_label(track)}: {done} to {name} (this ffmpeg cannot copy {track.codec} into {muxer})")
        else:
            plan.notes.append(f"{_label(track)}: dropped (this ffmpeg cannot copy {track.codec} into {muxer})")
    plan.carried = kept


def _muxer_takes(source: Path, tracks: list[Track], muxer: str) -> bool:
    """Whether ffmpeg starts writing `tracks` of `source`, copied, into `muxer` (the container's
    header, no packets: a codec it cannot hold fails right there)."""
    with tempfile.TemporaryDirectory(prefix="vs-sr-tracks-") as folder:
        command = [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", file_url(source)]
        for track in tracks:
            command += ["-map", f"0:{track.index}"]
        command += ["-c", "copy", "-t", "0", "-f", muxer, file_url(Path(folder) / "probe")]
        try:
            run_tool(command, "checking which tracks the output container takes")
        except SRError:
            return False
    return True
