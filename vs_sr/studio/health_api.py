"""Routes about the server itself: whether it is up, what its machine runs, and its models."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from ..models.catalog import catalog
from ..report import machine_report
from .context import GUARD

router = APIRouter(prefix="/api")


@router.head("/health", include_in_schema=False)  # (load balancers' checks send HEAD; one operation in /docs)
@router.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@router.get("/models", dependencies=GUARD)
def models() -> list[dict[str, Any]]:
    """Every named model at every scale; `default` marks the one the page preselects. Where the
    weights lie on the server is left out: a client has no use for the server's paths."""
    return [{key: value for key, value in row.items() if key != "weights"} for row in catalog()]


@router.get("/info", dependencies=GUARD)
async def info() -> dict[str, Any]:
    """What `vs-sr info --json` prints for the server's machine: backends, precisions, tools, extras;
    without where things lie on the server (tools, folders), which a client has no use for."""
    return without_paths(await asyncio.to_thread(machine_report))


def without_paths(report: dict[str, Any]) -> dict[str, Any]:
    """The report less its server paths: the tools' `path`s, the model folders searched, the cache
    folder, and vspipe's location (its verdict stays)."""
    tools = {name: {key: value for key, value in tool.items() if key != "path"} if isinstance(tool, dict) else tool
             for name, tool in report.get("tools", {}).items()}
    models = {key: value for key, value in report.get("models", {}).items() if key != "searched"}
    shown = {**report, "tools": tools, "models": models}
    shown.pop("cache", None)
    if isinstance(shown.get("cache_limit"), dict) and shown["cache_limit"].get("problem"):  # (it names the folder)
        shown["cache_limit"] = {**shown["cache_limit"], "problem": "`vs-sr info` on the server says what is wrong"}
    if isinstance(shown.get("vspipe"), str):  # "PATH (works)", or why not (which names paths)
        shown["vspipe"] = "works" if shown["vspipe"].endswith("(works)") else \
            "does not work: `vs-sr info` on the server says why"
    return shown
