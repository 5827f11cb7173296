"""One file to one file: probe, track policy, the vspipe script, ffmpeg commands, process
supervision, output verification and progress, put together by `upscale_file`."""

from .job import Job
from .upscale_file import upscale_file

__all__ = ["Job", "upscale_file"]
