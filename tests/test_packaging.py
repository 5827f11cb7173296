"""What a pip user gets: the wheel and sdist carry the licence, the type marker, every package,
and (sdist) the examples and docs the README points to."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_and_sdist_contents(tmp_path):
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("vs_sr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "vs_sr").rglob("__init__.py")}
    assert {f"{package}/__init__.py" for package in packages} <= names
    assert "vs_sr/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "License-File: LICENSE" in zipfile.ZipFile(wheel).read(metadata).decode()
    sdist = next(tmp_path.glob("vs_sr-*.tar.gz"))
    members = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"LICENSE", "README.md", "examples/upscale.vpy", "examples/compare.vpy", "docs/benchmarks.md",
            "vs_sr/py.typed"} <= members
