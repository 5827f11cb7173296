"""What compute this machine has: CPU cores, memory and CUDA GPUs, found without importing a framework."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.cache
def _driver() -> ctypes.CDLL | None:
    """The CUDA driver library, initialised; None without a driver or GPU."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        return cuda if cuda.cuInit(0) == 0 else None
    return None


def cuda_device_count() -> int:
    """Number of CUDA GPUs the driver reports; 0 without a driver. Cheap: no torch import."""
    cuda, count = _driver(), ctypes.c_int(0)
    if cuda is None or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def cuda_device_names() -> list[str]:
    cuda = _driver()
    names: list[str] = []
    if cuda is None:
        return names
    for index in range(cuda_device_count()):
        device, name = ctypes.c_int(), ctypes.create_string_buffer(256)
        if cuda.cuDeviceGet(ctypes.byref(device), index) == 0 and cuda.cuDeviceGetName(name, 256, device) == 0:
            names.append(name.value.decode())
    return names


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory new work can have without swapping (Linux's MemAvailable); None where the
    kernel does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


def cuda_compute_capability(index: int) -> str:
    """"major.minor" of a CUDA device (e.g. "9.0" for Hopper), from the driver."""
    cuda = _driver()
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if cuda is None or cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
        return "0.0"
    cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
    return f"{major.value}.{minor.value}"


def cuda_free_memory(index: int) -> int | None:
    """Free memory of a CUDA device in bytes (through PyTorch, which every GPU backend uses)."""
    if cuda_device_count() == 0:
        return None
    try:
        import torch
    except ImportError:
        return None
    return int(torch.cuda.mem_get_info(index)[0]) if torch.cuda.is_available() else None


def cuda_gpus() -> set[tuple[str, str]]:
    """(name, compute capability) of this machine's GPUs: what a TensorRT engine must be built for."""
    return {(name, cuda_compute_capability(i)) for i, name in enumerate(cuda_device_names())}


# The x86 features that decide which low-precision kernels a CPU runtime (OpenVINO's oneDNN) can
# use: AMX tiles (bf16 and int8 matrix units), VNNI (int8 dot products, 512- or 256-bit),
# AVX512-BF16, and the vector width (AVX-512, AVX2) of the kernels used without them.
ISA_FEATURES = ("amx_int8", "amx_bf16", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512f", "avx2")
INT8_FEATURES = frozenset({"amx_int8", "avx512_vnni", "avx_vnni"})
BF16_FEATURES = frozenset({"amx_bf16", "avx512_bf16"})
ISA_CAP_VARIABLES = ("OV_CPU_MAX_ISA", "ONEDNN_MAX_CPU_ISA")
# What each oneDNN ISA level keeps of ISA_FEATURES, for OV_CPU_MAX_ISA / ONEDNN_MAX_CPU_ISA (set
# both to make OpenVINO run as on an older CPU: AVX512_CORE_VNNI is Ice Lake, AVX512_CORE_BF16
# Zen 4/5 or Cooper Lake, AVX2_VNNI Alder Lake, AVX2 Zen 2/3, AVX512_CORE Skylake servers).
_AVX512 = frozenset({"avx2", "avx512f"})
_VNNI512 = _AVX512 | {"avx512_vnni"}
ISA_CAPS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("SSE41", "AVX"), frozenset()),
    "AVX2": frozenset({"avx2"}),
    "AVX512_CORE": _AVX512,
    **dict.fromkeys(("AVX2_VNNI", "AVX2_VNNI_2"), frozenset({"avx2", "avx_vnni"})),
    "AVX512_CORE_VNNI": _VNNI512,
    **dict.fromkeys(("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"), _VNNI512 | {"avx512_bf16"}),
    **dict.fromkeys(("AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL"),
                    frozenset(ISA_FEATURES)),
}


def _cpuinfo(field: str) -> str:
    """The first `field` line of /proc/cpuinfo ("" where there is none: not Linux, not x86)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_name() -> str:
    return _cpuinfo("model name") or "unknown CPU"


def isa_cap() -> str | None:
    """The ISA ceiling OpenVINO is held to by the environment ("NAME=LEVEL"), or None."""
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAP_VARIABLES if os.environ.get(name)]
    return ", ".join(caps) or None


@functools.cache
def cpu_features() -> frozenset[str]:
    """ISA_FEATURES this CPU has (its /proc/cpuinfo flags), less what OV_CPU_MAX_ISA or
    ONEDNN_MAX_CPU_ISA hold OpenVINO back from (an unknown level holds nothing back)."""
    flags = set(_cpuinfo("flags").split())
    features = frozenset(f for f in ISA_FEATURES if f in flags)
    for name in ISA_CAP_VARIABLES:
        allowed = ISA_CAPS.get(os.environ.get(name, "").strip().upper())
        if allowed is not None:
            features &= allowed
    return features
