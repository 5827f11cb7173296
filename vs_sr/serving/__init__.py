"""Triton Inference Server: model repositories for vs_sr's networks (`export`) and the server from
PyPI's nvidia-pytriton wheel (`server`); `backends.triton` is the client the filter uses."""

from .model_repository import Exported, ExportOptions, export_model, read_config
from .triton_server import TritonServer

__all__ = ["ExportOptions", "Exported", "TritonServer", "export_model", "read_config"]
