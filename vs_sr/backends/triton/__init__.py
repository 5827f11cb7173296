"""Triton Inference Server as a backend: the tiles of a frame go to a model on a server, so many
encoders (vspipe processes on any machine) share the GPUs of one box and its dynamic batcher.

At open the server and the model's config are checked (one image input and output, FP32 or FP16,
3 channels, batch limit, scale: from the config's dims, else from a tiny probe inference) and
every mismatch becomes an `SRError` saying what to fix. Each tile travels as its own request of
one static shape, so the batcher can merge tiles across frames and processes; a stream keeps the
tiles of a frame in flight together. A server on this host can read the tiles from system shared
memory instead of the socket (one region per stream, reused). Every call has a deadline and is
retried when the server is briefly unreachable: nothing waits forever.

The model's name on the server is `<registry name>-x<scale>`, or the file's stem for a path
(`models.served_name`); `vs-sr triton export` writes repositories with those names.
"""

from .address import URL_ENV, Address, normalise_server
from .backend import TritonBackend, TritonSession
from .config import ServedNetwork, served_network
from .connection import Connection

__all__ = ["URL_ENV", "Address", "Connection", "ServedNetwork", "TritonBackend", "TritonSession", "normalise_server",
           "served_network"]
