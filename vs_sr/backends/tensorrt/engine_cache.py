"""TensorRT engine cache: what an engine depends on, where it lives, building it once, loading it safely.

An engine is only valid for the exact ONNX graph, input shapes, precision, TensorRT version and
GPU (name and compute capability) it was built for, so all of these form its key: they are in
the file name and in a JSON manifest beside it, together with the engine's sha256. A load checks
the manifest against the key and the bytes against the hash before TensorRT sees them; a
mismatch, a corrupt file or an engine TensorRT refuses is rebuilt. Builds take a lock (two
vspipe processes asking for one engine build it once) and write to temporary names, renamed
when complete; the manifest is written last, so an engine without one is never used.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...atomic import atomic_output
from ...errors import SRError
from ...models.weights import file_digest
from ...paths import engine_dir

RECIPE = 2  # bump when the build settings change what an engine computes (2: strongly typed)

Shape = tuple[int, int, int]  # (batch, height, width) of the input


@dataclass(frozen=True)
class EngineKey:
    model: str
    onnx_sha256: str
    min_shape: Shape
    opt_shape: Shape
    max_shape: Shape
    precision: str
    trt_version: str
    gpu: str
    compute_capability: str
    recipe: int = RECIPE

    @classmethod
    def static(cls, model: str, onnx_sha256: str, shape: Shape, **rest: Any) -> EngineKey:
        return cls(model, onnx_sha256, shape, shape, shape, **rest)

    @property
    def is_static(self) -> bool:
        return self.min_shape == self.opt_shape == self.max_shape

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def file_stem(self) -> str:
        shapes = "x".join(map(str, self.opt_shape)) if self.is_static else "-".join(
            "x".join(map(str, s)) for s in (self.min_shape, self.opt_shape, self.max_shape))
        gpu = re.sub(r"[^A-Za-z0-9]+", "", self.gpu)[:24]
        return (f"{_slug(self.model)}-{self.onnx_sha256[:12]}-b{shapes}-{self.precision}-trt{self.trt_version}"
                f"-{gpu}-sm{self.compute_capability.replace('.', '')}-{self.digest()[:8]}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:48]


@dataclass(frozen=True)
class Entry:
    """A cached engine as its manifest describes it."""

    key: EngineKey
    engine: Path
    sha256: str
    size: int
    built_at: float
    build_seconds: float


class EngineCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or engine_dir()

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        stem = key.file_stem()  # has dots (versions): append suffixes rather than with_suffix()
        return self.directory / f"{stem}.engine", self.directory / f"{stem}.json"

    def timing_cache(self, trt_version: str, compute_capability: str) -> Path:
        """One timing cache per TensorRT version and GPU architecture, shared by all builds."""
        return self.directory / f"timing-trt{trt_version}-sm{compute_capability.replace('.', '')}.cache"

    def clean_timing_caches(self) -> list[Path]:
        """Delete every timing cache (`timing_cache` names them); the paths removed."""
        return [path for path in sorted(self.directory.glob("timing-*.cache")) if _removed(path)]

    def entry(self, key: EngineKey) -> Entry | None:
        """The valid cached engine for `key`: manifest matching the key, bytes matching the hash."""
        engine, manifest = self.paths(key)
        entry = _read_manifest(manifest)
        if entry is None or entry.key != key or not engine.is_file():
            return None
        if engine.stat().st_size != entry.size or file_digest(engine) != entry.sha256:
            return None
        return entry

    def load(self, key: EngineKey, deserialize: Callable[[bytes], Any]) -> Any | None:
        """The deserialized engine, or None if it is missing, stale, corrupt or refused by TensorRT."""
        entry = self.entry(key)
        return None if entry is None else deserialize(entry.engine.read_bytes())

    def get_or_build(self, key: EngineKey, build: Callable[[Path], None], deserialize: Callable[[bytes], Any],
                     log: Callable[[str], None] = lambda message: None) -> Any:
        """Load the engine for `key`, building it (once, under a lock) if there is no valid one."""
        from filelock import FileLock

        seen = self.entry(key)
        engine = None if seen is None else deserialize(seen.engine.read_bytes())
        if engine is not None:
            return engine
        self.directory.mkdir(parents=True, exist_ok=True)
        engine_path, manifest_path = self.paths(key)
        with FileLock(str(engine_path) + ".lock"):
            current = self.entry(key)
            if current is not None and current != seen:  # another process built it meanwhile
                engine = deserialize(current.engine.read_bytes())
                if engine is not None:
                    return engine
            if engine_path.exists() or manifest_path.exists():
                log(f"discarding the unusable cached engine {engine_path.name} (corrupt, stale or refused)")
            manifest_path.unlink(missing_ok=True)
            started = time.monotonic()
            with atomic_output(engine_path) as temp:
                build(temp)
            data = engine_path.read_bytes()
            engine = deserialize(data)
            if engine is None:
                engine_path.unlink(missing_ok=True)
                raise SRError(f"TensorRT could not load the engine it just built ({engine_path.name}).")
            entry = Entry(key, engine_path, hashlib.sha256(data).hexdigest(), len(data), time.time(),
                          time.monotonic() - started)
            _write_manifest(manifest_path, entry)
            log(f"built {engine_path.name} in {entry.build_seconds:.0f} s")
        return engine

    @staticmethod
    def stale_reason(entry: Entry, trt_version: str | None, gpus: set[tuple[str, str]]) -> str | None:
        """Why a cached engine can no longer run here (None if it can): TensorRT missing or another
        version, built for a GPU this machine lacks (`gpus`: (name, compute capability) pairs),
        or built with older settings."""
        if trt_version is None:
            return "TensorRT not installed"
        if entry.key.trt_version != trt_version:
            return f"built with TensorRT {entry.key.trt_version}"
        if (entry.key.gpu, entry.key.compute_capability) not in gpus:
            return "for a GPU not in this machine"
        if entry.key.recipe != RECIPE:
            return "older vs_sr build settings"
        return None

    def entries(self) -> list[Entry]:
        found = []
        for manifest in sorted(self.directory.glob("*.json")):
            if ".part." in manifest.name:  # a manifest being written
                continue
            entry = _read_manifest(manifest)
            if entry is not None:
                found.append(entry)
        return found

    def clean(self, remove: Callable[[Entry], bool]) -> list[Path]:
        """Delete the engines (and manifests) `remove` picks, plus engines without a manifest; an
        engine being built (its lock held: a finished engine waits for its manifest) is left alone."""
        removed = []
        known = set()
        for entry in self.entries():
            engine, manifest = self.paths(entry.key)
            known.add(engine)
            if remove(entry):
                removed += self._remove_unbuilding(engine, manifest)
        for orphan in self.directory.glob("*.engine"):
            if orphan not in known and ".part." not in orphan.name:  # (a part file: one being written)
                removed += self._remove_unbuilding(orphan)
        return removed

    @staticmethod
    def _remove_unbuilding(engine: Path, *others: Path) -> list[Path]:
        from filelock import FileLock, Timeout

        lock = Path(str(engine) + ".lock")
        try:
            with FileLock(str(lock), timeout=0):
                removed = [path for path in (engine, *others) if _removed(path)]
                # Its engine gone, its lock file goes too (one was left beside every engine removed). Held
                # here, no build is under way; one starting this instant may build twice, atomically.
                lock.unlink(missing_ok=True)
                return removed
        except Timeout:
            return []


def _removed(path: Path) -> bool:
    """Whether this call removed `path` (another `clean` at the same time may have)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _read_manifest(path: Path) -> Entry | None:
    try:
        data = json.loads(path.read_text())
        key = data["key"]
        for name in ("min_shape", "opt_shape", "max_shape"):
            key[name] = tuple(key[name])
        return Entry(EngineKey(**key), path.parent / (path.name.removesuffix(".json") + ".engine"), data["sha256"],
                     data["size"], data["built_at"], data["build_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_manifest(path: Path, entry: Entry) -> None:
    data = {"key": asdict(entry.key), "sha256": entry.sha256, "size": entry.size, "built_at": entry.built_at,
            "build_seconds": entry.build_seconds}
    with atomic_output(path) as temp:
        temp.write_text(json.dumps(data, indent=2))
