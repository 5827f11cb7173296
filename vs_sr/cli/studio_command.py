"""`vs-sr studio`: the web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import duration, port, positive


def host(text: str) -> str:
    if not text.strip():  # (it listened on every interface, announced as "listening on  ...")
        raise argparse.ArgumentTypeError("an address to listen on (127.0.0.1; 0.0.0.0 for every interface), not ''")
    return text.strip()


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    studio = commands.add_parser("studio", help="a web page to upload, upscale, compare and download videos",
                                 description="Serve the studio page and its API (OpenAPI docs at /docs).")
    studio.add_argument("--host", type=host, default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs --token)")
    studio.add_argument("--port", type=port, default=8008, help="port (default 8008; 0 picks a free one)")
    studio.add_argument("--data", default="studio-data", help="folder for uploads, jobs and results "
                        "(default ./studio-data)")
    studio.add_argument("--jobs", type=positive, default=1, help="chunks of a job at once (default 1)")
    studio.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run chunks on Ray: started here, or the cluster at HOST:PORT")
    studio.add_argument("--token", type=access_token,
                        help="require this access token on every API call (Authorization: Bearer); 16 characters or "
                        "more, e.g. $(openssl rand -hex 16)")
    studio.add_argument("--max-upload-mb", type=positive, default=2048, help="largest upload in MB (default 2048)")
    studio.add_argument("--max-queued", type=positive, default=20, help="jobs that may wait at once (default 20)")
    studio.add_argument("--upload-timeout", type=positive, default=60, metavar="SECONDS",
                        help="give up an upload (408) when no bytes of it arrive for this long (default 60)")
    studio.add_argument("--root-path", type=root_path, default="", metavar="PATH",
                        help="the path a reverse proxy serves the studio under (e.g. /studio), for the API docs and "
                        "redirects; the page itself works under any path")
    studio.add_argument("--log-level", choices=("warning", "info"), default="warning",
                        help="warning (default): problems only; info: also each request and each job's steps")
    studio.add_argument("--keep-days", type=duration("days", " (leave it out to keep everything)"), metavar="DAYS",
                        help="remove finished jobs with their results DAYS after they end, and uploads DAYS after "
                        "they arrive once no job of theirs is left (default: keep everything)")
    studio.set_defaults(run=run, interrupted="stopped; unfinished jobs continue when the studio starts again")


def root_path(text: str) -> str:
    if text and (not text.startswith("/") or text.endswith("/")):
        raise argparse.ArgumentTypeError(f"a path that begins with '/' and does not end with one (e.g. /studio), not "
                                         f"{text!r}")
    return text


TOKEN_LENGTH = 16  # characters: a blank or short token guards nothing on an open address


def access_token(text: str) -> str:
    if len(text.strip()) < TOKEN_LENGTH or text != text.strip():
        raise argparse.ArgumentTypeError(f"a token of {TOKEN_LENGTH} characters or more, without spaces at its ends "
                                         "(e.g. \"$(openssl rand -hex 16)\")")
    return text


def run(args: argparse.Namespace) -> int:
    from ..errors import SRError

    try:
        from ..studio.app import StudioConfig
        from ..studio.web_server import serve
    except ImportError as error:
        raise SRError(f"the studio needs its extra: pip install 'vs_sr[studio]' ({error.name} is missing).") from None
    config = StudioConfig(Path(args.data).resolve(), jobs=args.jobs, token=args.token,
                          max_upload_mb=args.max_upload_mb, max_queued=args.max_queued,
                          upload_idle_s=args.upload_timeout, keep_days=args.keep_days)
    serve(config, args.host, args.port, args.ray, announce=lambda line: print(line, flush=True),
          root_path=args.root_path, log_level=args.log_level)
    return 0
