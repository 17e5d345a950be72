"""The studio's HTTP routes (Starlette): a page, its script and style sheet, and a small JSON API.

Nothing a request holds becomes a path: runs are numbers into the list given on the command line, jobs are
random ids in memory, and a job's files are numbers into the list the job made. Requests are bounded in size
(``MAX_BODY_BYTES``), and a POST must say it is JSON (so another web site cannot post to the studio without the
browser asking first), and the ``Host`` must be the one the studio serves (no DNS rebinding). Every answer to a
bad request is ``{"error": "one line"}``, which the page shows as text.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import SeqStudioError
from .jobs import Job, JobQueue
from .models import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, StudioModel, megabytes
from .work import Files, run_job

DRAIN_BYTES = 64 << 20  # a larger request is refused before it is read (the browser may then show no answer)
STATIC = {"studio.js": "text/javascript", "studio.css": "text/css"}  # the only static files, by name
MEDIA = {".png": "image/png", ".svg": "image/svg+xml", ".wav": "audio/wav", ".mid": "audio/midi",
         ".midi": "audio/midi", ".npz": "application/octet-stream", ".abc": "text/plain", ".txt": "text/plain"}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self'; "
                                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _page_file(name: str) -> bytes:
    return resources.files("seqstudio.studio").joinpath("page", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def too_big(size: int) -> str:
    return (f"the request is too large ({megabytes(size)}); the studio takes uploads up to "
            f"{megabytes(MAX_UPLOAD_BYTES)}")


async def _read_json(request: Request):
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send the request as JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    declared = int(declared) if declared and declared.isdigit() else None
    if declared is not None and declared > DRAIN_BYTES:
        raise HTTPException(413, too_big(declared))
    body, seen = bytearray(), 0
    async for chunk in request.stream():  # read to the end (a browser shows no answer sent while it still sends)
        seen += len(chunk)
        if seen > DRAIN_BYTES:
            raise HTTPException(413, too_big(seen))
        if seen <= MAX_BODY_BYTES:
            body += chunk
    if seen > MAX_BODY_BYTES:
        raise HTTPException(413, too_big(seen))
    try:
        return json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the request is not valid JSON") from None


class Studio:
    """The served runs, the job queue and the folder all jobs write into (removed when the studio stops)."""

    def __init__(self, run_dirs: list[Path]):
        self.models = [StudioModel(i, Path(p)) for i, p in enumerate(run_dirs)]
        self.jobs = JobQueue(len(self.models))
        self._tmp = tempfile.TemporaryDirectory(prefix="seqstudio-studio-")
        self.folder = Path(self._tmp.name)
        self.files: dict[str, Files] = {}

    def close(self) -> None:
        self.jobs.close()
        self._tmp.cleanup()

    def model(self, index: int) -> StudioModel:
        if not 0 <= index < len(self.models):
            raise HTTPException(404, f"no run number {index}: this studio serves {len(self.models)} run(s)")
        return self.models[index]

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job (finished jobs are kept for a while, then forgotten)")
        return job

    # -- routes ----------------------------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        return Response(_page_file("studio.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return Response(_page_file(name), media_type=STATIC[name], headers=SECURITY_HEADERS)

    async def runs(self, request: Request) -> Response:
        return JSONResponse([m.describe() for m in self.models], headers=SECURITY_HEADERS)

    async def submit(self, request: Request) -> Response:
        model = self.model(request.path_params["index"])
        body = await _read_json(request)
        try:
            req = model.parse(body)
        except SeqStudioError as exc:
            return _error(400, str(exc))
        job = Job(model=model.index, work=lambda j: None)
        folder = self.folder / job.id
        files = self.files[job.id] = Files(folder)
        job.work = lambda j: run_job(j, model, req, folder, files)
        job.on_forget = lambda: (self.files.pop(job.id, None), shutil.rmtree(folder, ignore_errors=True))
        self.jobs.submit(job)
        return JSONResponse(self.jobs.status(job), headers=SECURITY_HEADERS)

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.jobs.status(self.job(request.path_params["job_id"])), headers=SECURITY_HEADERS)

    async def cancel(self, request: Request) -> Response:
        job = self.job(request.path_params["job_id"])
        job.cancel()
        return JSONResponse(self.jobs.status(job), headers=SECURITY_HEADERS)

    async def file(self, request: Request) -> Response:
        job = self.job(request.path_params["job_id"])
        files = self.files.get(job.id)
        number = request.path_params["number"]
        if job.state != "done" or files is None or not 0 <= number < len(files.paths):
            raise HTTPException(404, "no such file")
        path = files.paths[number]
        download = request.query_params.get("download") == "1"
        return FileResponse(path, media_type=MEDIA.get(path.suffix.lower(), "application/octet-stream"),
                            filename=path.name if download else None, headers=SECURITY_HEADERS,
                            content_disposition_type="attachment" if download else "inline")

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, exc.detail if exc.status_code != 404 or exc.detail != "Not Found"
                      else "no such page")


def _lifespan(studio: Studio):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        studio.close()

    return lifespan


def create_app(run_dirs: list[Path], hosts: list[str] | None = None) -> Starlette:
    """The ASGI app serving ``run_dirs``; ``hosts``: the Host names it answers (default: this computer's)."""
    studio = Studio(run_dirs)
    routes = [Route("/", studio.page),
              Route("/static/{name}", studio.static),
              Route("/api/runs", studio.runs),
              Route("/api/runs/{index:int}/jobs", studio.submit, methods=["POST"]),
              Route("/api/jobs/{job_id}", studio.status),
              Route("/api/jobs/{job_id}/cancel", studio.cancel, methods=["POST"]),
              Route("/api/jobs/{job_id}/files/{number:int}", studio.file)]
    allowed = hosts or ["127.0.0.1", "localhost", "[::1]"]
    app = Starlette(routes=routes, exception_handlers={HTTPException: studio.http_error},
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)],
                    lifespan=_lifespan(studio))
    app.state.studio = studio
    return app
