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
