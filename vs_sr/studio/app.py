"""The studio's web app: the API (uploads, jobs, live progress, previews, results) and the page.

Routes and fields are a contract (see the README): the page uses nothing else. Errors are 4xx
answers whose `detail` says, in words a person understands, what was wrong. The routes live in
one router per resource (`*_api`); what they share is one `Studio` on `app.state` (`context`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount

from ..batch.executors import Executor
from . import health_api, jobs_api, previews_api, videos_api
from .context import Studio, StudioConfig
from .job_queue import DISK_FULL, JobQueue
from .library import Library
from .previews import Previews
from .retention import Retention

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("vs_sr.studio")

__all__ = ["StudioConfig", "create_app"]


def create_app(config: StudioConfig, executor: Executor | None = None) -> FastAPI:
    """The app for `config`; `executor` runs the jobs' chunks (None: this machine's processes)."""
    library = Library(config.data)
    library.remove_unfinished_uploads()
    studio = Studio(config, library, JobQueue(library, config.jobs, executor), Previews())
    retention = Retention(studio)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        studio.jobs.start()
        retention.start()
        yield
        await asyncio.to_thread(retention.stop)
        await asyncio.to_thread(studio.jobs.shutdown)
        library.close()

    app = FastAPI(title="vs-sr studio", version="1", lifespan=lifespan,
                  description="Upload a video, upscale it with a super-resolution network, watch, compare, download.")
    app.state.studio = studio
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OSError, _disk_full)
    app.add_exception_handler(sqlite3.OperationalError, _disk_full)
    for module in (health_api, videos_api, previews_api, jobs_api):
        app.include_router(module.router)
    app.add_api_route("/api/{path:path}", _no_route, methods=list(METHODS), include_in_schema=False)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _no_route(request: Request) -> Response:
    """Any /api/ request no route takes: a path with a trailing slash redirected to its route (as
    Starlette does where nothing else matches), a 405 naming the methods its path has, or a 404. (The
    page, mounted at /, would answer both as a missing file, a 404 without a word.)"""
    path = request.url.path
    routes = [route for route in request.app.router.routes
              if not isinstance(route, Mount) and getattr(route, "endpoint", None) is not _no_route]

    def methods(path: str) -> list[str]:
        scope = {**request.scope, "path": path}
        return [method for method in METHODS
                if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)]

    if path.endswith("/") and request.method in methods(path.rstrip("/")):  # (as Starlette would: a redirect)
        # A path, not a URL: the one the request came by may be a proxy's, on another host and port (the
        # path holds the prefix a proxy serves the studio under, given as --root-path)
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(path.rstrip("/") + query, status_code=307)
    allowed = methods(path)
    if allowed:
        return JSONResponse({"detail": f"{path} takes {', '.join(allowed)}, not {request.method}."}, status_code=405,
                            headers={"Allow": ", ".join(allowed)})
    return JSONResponse({"detail": f"no API route {path}; the routes are listed at /docs."}, status_code=404)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """A request that does not fit its route's fields, in one sentence ("scale: Input should be
    less than or equal to 8; heigth: Extra inputs are not permitted")."""
    assert isinstance(error, RequestValidationError)
    problems = [_problem(problem) for problem in error.errors()]
    return JSONResponse({"detail": "; ".join(problems) + "."}, status_code=422)


def _problem(problem: Any) -> str:
    """One problem of a request in words: a body that is not a JSON object says what to send
    (pydantic's "1: JSON decode error" and "body: Input should be a valid dictionary" do not)."""
    if problem["type"] == "json_invalid":
        return f"the body is not valid JSON ({problem.get('ctx', {}).get('error', 'decode error')}): send a JSON " \
               "object, e.g. {\"video\": \"ID\", \"model\": \"faithful\", \"scale\": 2}"
    if problem["loc"] == ("body",) and problem["type"] in ("model_attributes_type", "dict_type", "missing"):
        return "send the fields as a JSON object (Content-Type: application/json), e.g. {\"video\": \"ID\"}"
    return f"{'.'.join(str(part) for part in problem['loc'][1:]) or problem['loc'][0]}: {problem['msg']}"


async def _disk_full(request: Request, error: Exception) -> JSONResponse:
    """507 for a write that met a full disk (an upload, the database); anything else stays a 500."""
    full = (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        (isinstance(error, sqlite3.OperationalError) and "full" in str(error))
    if not full:
        raise error
    log.warning("%s %s: the disk is full (%s)", request.method, request.url.path, error)
    return JSONResponse({"detail": f"{DISK_FULL}; then try again."}, status_code=507)
