"""The studio's web app: the API (uploads, jobs, live progress, previews, results) and the page.

Routes and fields are a contract (see the README): the page uses nothing else. Errors are 4xx
answers whose `detail` says, in words a person understands, what was wrong. The routes live in
one router per resource (`*_api`); what they share is one `Studio` on `app.state` (`context`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..batch.executors import Executor
from . import health_api, jobs_api, previews_api, videos_api
from .context import Studio, StudioConfig
from .job_queue import JobQueue
from .library import Library
from .previews import Previews

STATIC = Path(__file__).with_name("static")

__all__ = ["StudioConfig", "create_app"]


def create_app(config: StudioConfig, executor: Executor | None = None) -> FastAPI:
    """The app for `config`; `executor` runs the jobs' chunks (None: this machine's processes)."""
    library = Library(config.data)
    library.remove_unfinished_uploads()
    studio = Studio(config, library, JobQueue(library, config.jobs, executor), Previews())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        studio.jobs.start()
        yield
        await asyncio.to_thread(studio.jobs.shutdown)
        library.close()

    app = FastAPI(title="vs-sr studio", version="1", lifespan=lifespan,
                  description="Upload a video, upscale it with a super-resolution network, watch, compare, download.")
    app.state.studio = studio
    for module in (health_api, videos_api, previews_api, jobs_api):
        app.include_router(module.router)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app
