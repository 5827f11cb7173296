"""What compute this machine has: CPU cores and CUDA GPUs, found without importing a framework."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.cache
def cuda_device_count() -> int:
    """Number of CUDA GPUs the driver reports; 0 without a driver. Cheap: no torch import."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
