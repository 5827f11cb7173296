"""Where vs_sr keeps things on disk: weights, caches (ONNX exports, engines), each overridable."""

from __future__ import annotations

import os
import re
from pathlib import Path

MODEL_DIR_ENV = "VS_SR_MODEL_DIR"
CACHE_DIR_ENV = "VS_SR_CACHE_DIR"
ENGINE_DIR_ENV = "VS_SR_ENGINE_DIR"
FOLDER_VARIABLES = (MODEL_DIR_ENV, CACHE_DIR_ENV, ENGINE_DIR_ENV)
CACHE_LIMIT_ENV = "VS_SR_CACHE_LIMIT_GB"
CACHE_LIMIT_GB = 10.0  # per cache folder of exports (onnx, int8): one per frame size, 2-150 MB each


NAME_MAX = 255  # bytes in a file name (ext4, xfs, btrfs, tmpfs, ...)
# C0 and C1 controls, DEL, and the bidirectional overrides: what can move a terminal's cursor or turn a line around
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(path: Path | str) -> str:
    """A path as a message shows it: bytes that are not UTF-8 as \\xNN, control characters (a line
    break, a terminal's escape) as \\n, \\x1b, so a message stays one line and the terminal its own."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return CONTROL.sub(lambda match: match.group(0).encode("unicode_escape").decode(), text)


def name_problem(path: Path, what: str) -> str | None:
    """Why `path` cannot be handed to the tools (vspipe's script, ffmpeg, mkvmerge take UTF-8 names),
    or be made (too long a name); None where it can."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return (f"{what} {shown(path)} has a name that is not UTF-8 text, which vspipe and the tools it runs cannot "
                "be given; rename it (e.g. convmv -f latin1 -t utf8 --notest NAME)")
    size = len(os.fsencode(path.name))
    if size > NAME_MAX:
        return (f"{what} {shown(path)} has a name of {size} bytes, more than the {NAME_MAX} a file name may have; "
                "shorten it")
    return None


def check_name(path: Path, what: str) -> None:
    """`name_problem` as an SRError."""
    problem = name_problem(path, what)
    if problem:
        from .errors import SRError

        raise SRError(f"{problem}.")


def user_model_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("vs_sr", appauthor=False) / "models"


def model_dirs() -> list[Path]:
    """Directories searched for named weights, in order: $VS_SR_MODEL_DIR, then the user data dir."""
    dirs = [Path(os.environ[MODEL_DIR_ENV]).expanduser()] if os.environ.get(MODEL_DIR_ENV) else []
    return [*dirs, user_model_dir()]


def install_dir() -> Path:
    """Where imported or downloaded weights are written: the first searched directory."""
    return model_dirs()[0]


def cache_dir(kind: str) -> Path:
    """A cache subdirectory (onnx exports, engines): $VS_SR_CACHE_DIR or the user cache dir."""
    import platformdirs

    root = os.environ.get(CACHE_DIR_ENV)
    base = Path(root).expanduser() if root else platformdirs.user_cache_path("vs_sr", appauthor=False)
    return base / kind


def make_folder(directory: Path, option: str) -> None:
    """Make the folder an option names (and its parents), or say in one line why it cannot be."""
    from .errors import SRError

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SRError(f"{option} {directory} is a file: give a folder (it is made if missing).") from None
    except OSError as error:
        raise SRError(f"cannot make the folder {directory} ({error.strerror}); give a writable {option}.") from None


def lock_dir() -> Path:
    """Where the locks of outputs being written live: `locks/` in the cache directory, or, where
    that cannot be written (a cache shared read-only), a folder of this user's in the temporary
    directory (every run that meets the same read-only cache meets the same folder)."""
    import tempfile

    folder = cache_dir("locks")
    try:  # (tried, not judged by its mode: root may be denied or allowed either way)
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(handle)
        os.unlink(probe)
        return folder
    except OSError:
        pass
    runtime = os.environ.get("XDG_RUNTIME_DIR")  # the user's own; else the shared temporary directory
    fallback = Path(runtime) / "vs-sr-locks" if runtime else Path(tempfile.gettempdir()) / f"vs-sr-locks-{os.getuid()}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    status = fallback.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:  # made by another user first: not to be trusted
        from .errors import SRError

        raise SRError(f"the cache folder {folder} cannot be written and {fallback}, where output locks go instead, is "
                      f"not this user's alone; set {CACHE_DIR_ENV} to a folder you can write.")
    return fallback


def engine_dir() -> Path:
    """$VS_SR_ENGINE_DIR, or `engines/` in the cache directory ($VS_SR_CACHE_DIR or the user's)."""
    override = os.environ.get(ENGINE_DIR_ENV)
    return Path(override).expanduser() if override else cache_dir("engines")


def cache_limit() -> int | None:
    """Bytes each folder of exports may hold ($VS_SR_CACHE_LIMIT_GB, default 10; 0: no limit)."""
    text = os.environ.get(CACHE_LIMIT_ENV, "")
    try:
        gigabytes = float(text) if text.strip() else CACHE_LIMIT_GB
    except ValueError:
        gigabytes = -1.0
    if not 0 <= gigabytes < float("inf"):
        from .errors import SRError

        raise SRError(f"{CACHE_LIMIT_ENV} must be a number of gigabytes (0: no limit), not {text!r}.")
    return int(gigabytes * 2**30) or None
