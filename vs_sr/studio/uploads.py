"""Receiving an upload: the multipart body streamed to disk under a server-made id, with a size
cap and an idle deadline enforced while it arrives, then probed: content decides what is a video,
not the name. A client that goes away or stops sending is not an error of ours: it gets a 4xx."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from ..errors import SRError
from ..media.integrity import decodable
from ..media.probe import probe
from ..media.timeline import read_timeline
from .library import Video

EXTENSION = re.compile(r"^\.[a-z0-9]{1,5}$")
FIELD = "file"
STOP_CHECK_S = 0.5  # seconds between looks, while an upload's next bytes are awaited, at whether the server stops
NAME_LENGTH = 200  # characters of a client's file name kept (shown only; its extension stays)


class UploadError(Exception):
    """A refused upload: the HTTP status and the reason, in words for a person."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UploadCutOff(UploadError):
    """The client went away before the body's end: nobody is left to read an answer."""

    def __init__(self, received: int, reason: str | None = None) -> None:
        super().__init__(400, reason or f"the upload was cut off by the client after {received} bytes.")


async def receive(body: AsyncIterator[bytes], content_type: str, folder: Path, limit: int,
                  idle: float, stopping: threading.Event) -> tuple[Path, str]:
    """Write the multipart field `file` of the request into `folder`; (the file, the name the client
    gave). `idle`: seconds the body may send nothing before it is given up (408); `stopping`: set
    when the server stops (503: an upload of minutes would hold the stop until it is cut)."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(400, "send the video as multipart/form-data with a field named 'file'.")
    part = _Part(folder, limit)
    parser = MultipartParser(boundary, callbacks=part.callbacks())
    try:
        async for chunk in _arriving(body, idle, stopping):
            parser.write(chunk)
            if part.too_large:
                raise UploadError(413, f"the file is larger than the server's limit of {limit // 2**20} MB.")
        parser.finalize()
    except MultipartParseError as error:
        raise UploadError(400, f"the body is not valid multipart/form-data ({error}): send the video in a field "
                          "named 'file'.") from None
    finally:
        part.close()
    if part.files > 1:
        raise UploadError(422, f"the upload has {part.files} 'file' fields: send one video per upload.")
    if part.path is None or part.size == 0:
        raise UploadError(422, "the upload has no file in its 'file' field, or the file is empty.")
    if not part.ended:
        raise UploadError(400, f"the request ended after {part.size} bytes of the file, before its closing multipart "
                          "boundary (a Content-Length smaller than the body?): send the file again.")
    return part.path, part.name


async def _arriving(body: AsyncIterator[bytes], idle: float, stopping: threading.Event) -> AsyncIterator[bytes]:
    """The body's chunks, each within `idle` seconds of the one before (a client that stops sending
    would otherwise hold a connection, a task and a half-written file for ever), until the server
    stops."""
    chunks, received = aiter(body), 0
    next_chunk: asyncio.Task[bytes] | None = None
    try:
        while True:
            if next_chunk is None:
                next_chunk, since = asyncio.ensure_future(anext(chunks)), time.monotonic()
            done, _ = await asyncio.wait([next_chunk], timeout=STOP_CHECK_S)
            if stopping.is_set():
                raise UploadError(503, f"the server is stopping ({received} bytes had arrived): send the file again "
                                  "once it is back.")
            if not done:
                if time.monotonic() - since >= idle:
                    raise UploadError(408, f"no data arrived for {idle:g} s after {received} bytes, so the upload "
                                      "was given up: send the file again.")
                continue
            try:
                chunk = next_chunk.result()
            except StopAsyncIteration:
                return
            except ClientDisconnect:
                raise UploadCutOff(received) from None
            next_chunk = None
            received += len(chunk)
            yield chunk
    finally:
        if next_chunk is not None and not next_chunk.cancel() and not next_chunk.cancelled():
            next_chunk.exception()  # done: its error (a disconnect) is ours to read, or asyncio logs it


class _Part:
    """Collects one multipart part: headers first, then its data, into a file when it is `file`."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.handle: BinaryIO | None = None
        self.path: Path | None = None
        self.name = ""
        self.size = 0
        self.too_large = False
        self.ended = False
        """The file's part reached its closing boundary: the body held all of it."""
        self.files = 0
        """Parts named `file` (one is taken; more are refused)."""
        self.writing = False
        """The part arriving is the file's (other fields, a form's text, are passed over)."""

    def callbacks(self) -> Any:  # python_multipart's MultipartCallbacks (a TypedDict)
        def on_part_begin() -> None:
            self.headers = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header_name += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def on_header_end() -> None:
            self.headers[self.header_name.lower()] = self.header_value
            self.header_name, self.header_value = b"", b""

        def on_headers_finished() -> None:
            _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
            if options.get(b"name") == FIELD.encode():
                self.files += 1
            self.writing = self.files == 1 and self.handle is None
            if self.writing:
                # Browsers send a '"' in a file name as %22 (the HTML form encoding); the name is the user's.
                given = options.get(b"filename", b"video").decode(errors="replace").replace("%22", '"')
                suffix = Path(given).suffix.lower()
                head = given[:NAME_LENGTH - 1 - len(suffix)]
                self.name = given if len(given) <= NAME_LENGTH else f"{head}…{suffix}"
                self.path = self.folder / f"source{suffix if EXTENSION.match(suffix) else '.bin'}"
                self.handle = open(self.path, "wb")  # noqa: SIM115 -- closed in close()

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if not self.writing or self.handle is None or self.too_large:
                return
            self.size += end - start
            if self.size > self.limit:
                self.too_large = True
                return
            self.handle.write(data[start:end])

        def on_part_end() -> None:
            if self.writing and self.handle is not None:
                self.handle.close()
                self.ended = True
            self.writing = False

        return {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                "on_header_value": on_header_value, "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end}

    def close(self) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.close()


def describe(video_id: str, name: str, path: Path) -> Video:
    """The uploaded file as a library video, or an UploadError (422) saying why it is not one."""
    try:
        media = probe(path)
        media.video  # noqa: B018 -- raises for a file without a video track
        clip, timeline = read_timeline(path)
        found = decodable(media, clip.num_frames, timeline)
    except SRError as error:  # the reason, with our storage path shown as the client's file name
        reason = error.message.replace(f"file:{path.resolve()}", name).replace(str(path), name)
        raise UploadError(422, f"this is not a video we can read: {reason}") from None
    if not found.complete:  # a job would refuse it: say so now, in the client's terms
        raise UploadError(422, f"{dataclasses.replace(found, name=name).shortfall()}; upload a complete copy.")
    fps = float(clip.fps) if clip.fps_num else float(media.frame_rate)
    duration = media.duration or clip.num_frames / fps
    # The frames' size, as jobs read them: a portrait phone video's landscape frames come upright.
    return Video(video_id, name, path, clip.width, clip.height, clip.num_frames, round(fps, 3), round(duration, 3))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
