"""The videos a batch works on: files and folders given on the command line, each mapped to its
output path (a folder's relative layout is mirrored under the output directory). Files that hold
no video are skipped with a note; content decides, not the extension, except that a file named as
a video that cannot be opened at all is taken (and fails, named, at planning): a damaged video must
not pass for "not a video"."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SRError
from ..media.probe import probe
from ..media.tools import check_input
from ..paths import name_problem, shown
from ..progress import STEP_DELAY, Progress
from .state import STATE_DIR, signature

# Names that say "video": such a file that cannot be opened is a damaged video, not something else.
VIDEO_EXTENSIONS = {".mkv", ".mk3d", ".webm", ".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".avi", ".wmv", ".asf",
                    ".flv", ".f4v", ".ts", ".m2ts", ".mts", ".m2t", ".mpg", ".mpeg", ".m2v", ".vob", ".ogv", ".mxf",
                    ".dv", ".rm", ".rmvb", ".divx", ".nut", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc"}


@dataclass(frozen=True)
class Source:
    path: Path
    """The input file, absolute."""
    output: Path
    """Where its result goes, absolute."""


def find_sources(items: Sequence[Path], output_dir: Path, suffix: str, recursive: bool, label: str = "vs-sr batch",
                 quiet: bool = False, known: Mapping[Path, str] | None = None) -> tuple[list[Source], list[str]]:
    """(the videos, notes on what was skipped). A folder contributes its files (and, with
    `recursive`, its subfolders'); nothing inside the output directory is taken as input. A file
    is read (ffprobe) to tell a video unless `known` holds it with its signature (size and time:
    unchanged since an earlier run took it); a library's thousands take minutes, counted on a
    progress line (`label`, unless `quiet`) once they take more than a moment."""
    output_dir = output_dir.resolve()
    notes: list[str] = []
    found: list[tuple[Path, Path]] = []
    for item in items:
        path = item.resolve()
        if path.is_dir():
            files, passed_over = _files(path, recursive, output_dir)
            notes += passed_over
            candidates = [(f, f.relative_to(path)) for f in files]
        elif path.is_file():
            candidates = [(path, Path(path.name))]
        else:
            check_input(item, "input")  # says why: missing, or a pipe or device bestsource cannot index
            raise SRError(f"{item} is not a file or folder.")
        found += sorted(candidates, key=lambda candidate: candidate[0].is_symlink())  # (files first)
    progress = Progress(len(found), label=f"{label}: reading inputs", unit="files", quiet=quiet, delay=STEP_DELAY)
    sources = _videos(found, output_dir, suffix, notes, known or {}, progress)
    _check_unique(sources)
    _check_names(sources)
    return sources, notes


def _videos(found: list[tuple[Path, Path]], output_dir: Path, suffix: str, notes: list[str], known: Mapping[Path, str],
            progress: Progress) -> list[Source]:
    """The videos among (file, path relative to its input) pairs; what is not, noted."""
    sources: list[Source] = []
    taken: dict[Path, Path] = {}
    for count, (file, relative) in enumerate(found):
        progress.update(count)
        real = file.resolve()
        if real in taken:  # a link to a file already among the inputs: one video, made once
            notes.append(f"skipped {file}: the same file as {taken[real]}")
            continue
        taken[real] = file
        reason = None if _unchanged(file, known) else _not_a_video(file)
        if reason:
            notes.append(f"skipped {file}: {reason}")
        else:
            sources.append(Source(file, output_dir / relative.with_suffix(suffix)))
    progress.update(len(found))
    progress.finish()
    return sources


def _files(folder: Path, recursive: bool, output_dir: Path) -> tuple[list[Path], list[str]]:
    """The files of `folder` (with `recursive`, of its subfolders too, symbolic links to folders
    followed: a library spread over disks), none inside `output_dir`, and notes on what was passed
    over: broken links, another batch's output folders, and hidden names (".name": a system's side
    files), counted."""
    files: list[Path] = []
    passed: list[str] = []
    hidden = 0
    seen: set[Path] = set()  # real folders walked: a link back up the tree is walked once
    for top, folders, names in os.walk(folder, followlinks=True):
        real = Path(top).resolve()
        if real in seen or _inside(real, output_dir):
            folders.clear()
            continue
        if real != folder.resolve() and (real / STATE_DIR).is_dir():  # its videos are results, not inputs
            passed.append(f"skipped {top}: another vs-sr batch's output folder")
            folders.clear()
            continue
        seen.add(real)
        hidden += sum(name.startswith(".") for name in (*(folders if recursive else ()), *names))
        folders[:] = sorted(name for name in folders if not name.startswith(".")) if recursive else []
        for name in names:
            path = Path(top) / name
            if name.startswith("."):
                continue
            if path.is_file():
                if not _inside(path.resolve(), output_dir):
                    files.append(path)
            elif path.is_symlink() and not path.exists():
                passed.append(f"skipped {path}: a broken symbolic link (what it points to is missing, or a loop)")
    notes = sorted(passed)
    if hidden:
        notes.append(f"skipped {hidden} hidden file(s) or folder(s) in {folder} (names that begin with '.')")
    return sorted(files), notes


def _unchanged(path: Path, known: Mapping[Path, str]) -> bool:
    """An input an earlier run took as a video, unchanged since (a re-run of a library read every
    file again, the finished ones too: minutes before any work)."""
    if path not in known:
        return False
    try:
        return signature(path) == known[path]
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _not_a_video(path: Path) -> str | None:
    """Why `path` is no input of the batch, or None for a video (or a damaged one)."""
    try:
        media = probe(path)
    except SRError:
        return None if path.suffix.lower() in VIDEO_EXTENSIONS else "not a video file"
    try:
        media.video  # noqa: B018 -- raises for a file without a video track
    except SRError:
        return "no video track"
    return None


def _check_names(sources: list[Source]) -> None:
    """Inputs the tools cannot be given, outputs the file system cannot make or that would replace
    their input: all of them, before any work (a library met them one run at a time, each after
    hours of others' work, or the batch's state could not record them)."""
    problems = [problem for source in sources
                for problem in (name_problem(source.path, "input"), name_problem(source.output, "output"),
                                _replaced_input(source))
                if problem]
    if problems:
        raise SRError(f"{'; '.join(problems)}.")


def _replaced_input(source: Source) -> str | None:
    if source.output.resolve() != source.path.resolve():
        return None
    return f"the output of {shown(source.path)} would replace it; give an --output-dir apart from the inputs"


def _check_unique(sources: list[Source]) -> None:
    """Every clash at once: a library with several takes a run each to find them otherwise."""
    seen: dict[Path, Path] = {}
    clashes = []
    for source in sources:
        other = seen.setdefault(source.output, source.path)
        if other != source.path:
            clashes.append(f"{other} and {source.path} would both be written to {source.output}")
    if clashes:
        raise SRError(f"{'; '.join(clashes)}; rename one of each, or run them in separate batches.")
