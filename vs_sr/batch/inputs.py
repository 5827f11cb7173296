"""The videos a batch works on: files and folders given on the command line, each mapped to its
output path (a folder's relative layout is mirrored under the output directory). Files that hold
no video are skipped with a note; content decides, not the extension."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SRError
from ..media.probe import probe
from ..media.tools import check_input


@dataclass(frozen=True)
class Source:
    path: Path
    """The input file, absolute."""
    output: Path
    """Where its result goes, absolute."""


def find_sources(items: Sequence[Path], output_dir: Path, suffix: str, recursive: bool) -> tuple[list[Source], list[str]]:
    """(the videos, notes on what was skipped). A folder contributes its files (and, with
    `recursive`, its subfolders'); nothing inside the output directory is taken as input."""
    output_dir = output_dir.resolve()
    sources: list[Source] = []
    notes: list[str] = []
    for item in items:
        path = item.resolve()
        if path.is_dir():
            candidates = [(f, f.relative_to(path)) for f in _files(path, recursive) if not _inside(f, output_dir)]
        elif path.is_file():
            candidates = [(path, Path(path.name))]
        else:
            check_input(item, "input")  # says why: missing, or a pipe or device bestsource cannot index
            raise SRError(f"{item} is not a file or folder.")
        for file, relative in candidates:
            reason = _not_a_video(file)
            if reason:
                notes.append(f"skipped {file}: {reason}")
            else:
                sources.append(Source(file, output_dir / relative.with_suffix(suffix)))
    _check_unique(sources)
    return sources, notes


def _files(folder: Path, recursive: bool) -> Iterable[Path]:
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _not_a_video(path: Path) -> str | None:
    try:
        media = probe(path)
        media.video  # noqa: B018 -- raises for a file without a video track
    except SRError as error:
        return "not a video file" if "has no video track" not in error.message else "no video track"
    return None


def _check_unique(sources: list[Source]) -> None:
    seen: dict[Path, Path] = {}
    for source in sources:
        other = seen.setdefault(source.output, source.path)
        if other != source.path:
            raise SRError(f"{other} and {source.path} would both be written to {source.output}; rename one or run "
                          "them in separate batches.")
