"""Routes about the server itself: whether it is up, what its machine runs, and its models."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from ..models.catalog import catalog
from ..report import machine_report
from .context import GUARD

router = APIRouter(prefix="/api")


@router.api_route("/health", methods=["GET", "HEAD"])  # (load balancers' checks send HEAD)
def health() -> dict[str, bool]:
    return {"ok": True}


@router.get("/models", dependencies=GUARD)
def models() -> list[dict[str, Any]]:
    """Every named model at every scale; `default` marks the one the page preselects. Where the
    weights lie on the server is left out: a client has no use for the server's paths."""
    return [{key: value for key, value in row.items() if key != "weights"} for row in catalog()]


@router.get("/info", dependencies=GUARD)
async def info() -> dict[str, Any]:
    """What `vs-sr info --json` prints for the server's machine: backends, precisions, tools, extras."""
    return await asyncio.to_thread(machine_report)
