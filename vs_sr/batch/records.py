"""Records of finished work, kept beside it: a verified chunk's (`chunk-NNNNN.json` next to its
file) and a finished output's (`.vs-sr-batch/outputs/`). They repeat what the state says about
that work, so a batch whose state was lost or damaged is rebuilt (`--restart`) without redoing
what still verifies: a chunk whose file still has its recorded size and sha256, made from the
unchanged input with the same settings, encoder options and frame range; an output whose file
still has its recorded size and sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_output
from ..models.weights import file_digest
from .state import STATE_DIR


@dataclass(frozen=True)
class Origin:
    """What a piece of work was made from: the input as it was, and the batch's settings."""

    input: str
    signature: str
    """The input's size and modification time (state.signature)."""
    settings: str
    """BatchSettings.as_json()."""


@dataclass(frozen=True)
class ChunkRecord:
    origin: Origin
    first: int
    last: int
    options: list[str]
    """The encoder options the chunk was written with."""
    sha256: str
    size: int
    node: str


@dataclass(frozen=True)
class OutputRecord:
    origin: Origin
    frames: int
    sha256: str
    size: int
    salvaged: str | None


def write_record(path: Path, record: ChunkRecord | OutputRecord) -> None:
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(dataclasses.asdict(record), sort_keys=True), encoding="utf-8")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {**data, "origin": Origin(**data["origin"])} if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError, KeyError):  # missing, half-written or foreign: no record
        return None


def chunk_record_path(chunk_file: Path) -> Path:
    return chunk_file.with_suffix(".json")


def output_record_path(directory: Path, output: Path) -> Path:
    """Where the record of `output` lives: named after its path inside the batch directory."""
    try:
        key = str(output.relative_to(directory))
    except ValueError:
        key = str(output)
    return directory / STATE_DIR / "outputs" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def chunk_records(folders: Iterable[Path]) -> list[tuple[ChunkRecord, Path]]:
    """Every readable chunk record under `folders`, with the chunk file it describes."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("chunk-*.json")) if folder.is_dir() else []:
            data = _read(path)
            try:
                record = ChunkRecord(**data) if data is not None else None
            except TypeError:
                record = None
            if record is not None:
                found.append((record, path.with_suffix(".mkv")))
    return found


def recorded_output(directory: Path, output: Path) -> OutputRecord | None:
    """The record of `output`, if there is one, whatever the file is now."""
    data = _read(output_record_path(directory, output))
    try:
        return OutputRecord(**data) if data is not None else None
    except TypeError:
        return None


def output_record(directory: Path, output: Path) -> OutputRecord | None:
    """The record of `output`, if there is one and the file still matches it."""
    record = recorded_output(directory, output)
    return record if record is not None and matches(output, record.size, record.sha256) else None


def matches(path: Path, size: int, sha256: str) -> bool:
    """The file is still the one recorded (its size first: cheap; then its sha256)."""
    return path.is_file() and path.stat().st_size == size and file_digest(path) == sha256
