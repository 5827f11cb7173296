"""OpenVINO on the CPU: the backend (`backend`), driven through a small binding of OpenVINO's C API (`capi`)."""

from .backend import HINTS, OpenVINOBackend

__all__ = ["HINTS", "OpenVINOBackend"]
