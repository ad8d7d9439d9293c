"""The playground's FastAPI application: the page, its assets, uploads and the WebSocket.

    GET  /              the page (static/index.html); /static/* its JS and CSS — no CDN
    GET  /healthz       {"status": "ok", "open_tabs", "training", "busy_workers", ...}
    GET  /api/meta      data sets, activations, losses (with formulas), limits, engine options,
                        and this page's upload token
    POST /api/upload    a CSV file (multipart field "file", header X-Playground-Token)
    WS   /ws?token=...  one training session per connection (see live.py)
    GET  /openapi.json  the HTTP API's schema (what the fuzzing tests read)

Every request passes :class:`~.guard.Guard` first (Host and Origin checks, security headers).
FastAPI is imported here only, and this module only when the playground starts.
"""
# (no `from __future__ import annotations`: FastAPI reads the handlers' local type hints)

import threading
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources

from .. import __version__
from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..core.losses import LOSSES
from ..core.network import INITS
from ..training.train import select_engine
from .features import EXTRAS, REGRESSION_DEFAULTS
from .guard import TOKEN_HEADER, Guard
from .inputs import DATASETS, Uploads, previews
from .live import Tab, Workers
from . import PlaygroundError
from .session import Limits, engine_options

STATIC = resources.files("scratchnet") / "web" / "static"
MULTIPART_SLACK = 64_000  # the multipart envelope around the file (boundaries, headers)

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"],
               "properties": {"file": {"type": "string", "format": "binary"}}}}}},
    "parameters": [{"name": TOKEN_HEADER, "in": "header", "required": True,
                    "schema": {"type": "string"}}]}


def create_app(limits: Limits | None = None, host: str = "127.0.0.1"):
    """A new playground application (its own uploads, tabs and workers), for a server bound to
    ``host`` (the name that the Host check accepts besides localhost)."""
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    limits = limits or Limits()
    # one worker thread per tab and a few for building runs: a slice of training holds a
    # thread ≤ ~50 ms, and asyncio's default pool (6 threads on 2 cores) is never blocked
    workers = Workers(limits.sessions + 4)
    stopping = threading.Event()

    @asynccontextmanager
    async def lifespan(app):
        yield
        stopping.set()  # Ctrl-C: every tab's slice loop stops at its next check
        workers.shutdown()

    app = FastAPI(title="scratchnet playground", version=__version__, docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.limits = limits
    app.state.uploads = Uploads(limits)
    app.state.tabs = set()
    app.state.workers = workers
    app.state.stopping = stopping
    app.state.previews = previews()
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz():  # on the event loop: no thread to wait for while tabs train
        tabs = list(app.state.tabs)
        training = sum(1 for t in tabs if t.busy)
        full = len(tabs) >= limits.sessions
        return {"status": "full" if full else "ok", "version": __version__,
                "open_tabs": len(tabs), "max_tabs": limits.sessions, "training": training,
                "busy_workers": workers.busy, "workers": workers.size,
                "uploads": app.state.uploads.count()}

    @app.get("/api/meta")
    def meta():
        return {
            "datasets": DATASETS, "regression_sets": REGRESSION_DEFAULTS,
            "extras": {k: v[0]("x₁", "x₂") for k, v in EXTRAS.items()},
            "activations": list(HIDDEN_ACTIVATIONS), "outputs": list(OUTPUT_ACTIVATIONS),
            "losses": {k: v.formula for k, v in LOSSES.items()}, "inits": list(INITS),
            "limits": asdict(limits), "engine": select_engine("auto")[0],
            "options": engine_options(), "version": __version__,
            "previews": app.state.previews,
            "token": app.state.uploads.new_token(),  # readable by this server's own page only
        }

    @app.post("/api/upload", openapi_extra=UPLOAD_BODY)
    async def upload(request: Request):
        return await _upload(request, app.state.uploads, limits)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await _serve_tab(websocket, app.state, limits)

    return Guard(app, host)


def _too_big(what: str, limits: Limits):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": f"the upload has {what}; the playground takes CSV files up "
                         f"to {limits.upload_bytes:,} bytes"}, status_code=413)


async def _upload(request, uploads: Uploads, limits: Limits):
    """POST /api/upload: the page's token, then the body read up to the limit (chunked or
    not), then one CSV file from the multipart form."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    token = request.headers.get(TOKEN_HEADER)
    if not uploads.valid(token):
        return JSONResponse({"error": "uploads need the page's token (header "
                             f"{TOKEN_HEADER}): reload the playground page"},
                            status_code=403)
    cap = limits.upload_bytes + MULTIPART_SLACK
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > cap:
        return _too_big(f"{int(size):,} bytes", limits)
    body, n = [], 0
    async for chunk in request.stream():  # chunked or not: stop reading at the limit
        n += len(chunk)
        if n > cap:
            return _too_big(f"more than {cap:,} bytes", limits)
        body.append(chunk)
    data = b"".join(body)

    async def replay():
        return {"type": "http.request", "body": data, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
    except Exception:  # noqa: BLE001 - a malformed multipart body, whatever the parser says
        return JSONResponse({"error": "not a file upload (a multipart form with one CSV "
                             "file in the field 'file')"}, status_code=400)
    try:
        f = form.get("file")
        if f is None or isinstance(f, str):
            return JSONResponse({"error": "no file in the upload (field 'file')"},
                                status_code=400)
        content = await f.read(limits.upload_bytes + 1)
        filename = f.filename or "upload.csv"
    finally:
        await form.close()
    try:
        return uploads.add(token, filename, content)
    except PlaygroundError as e:
        status = 413 if len(content) > limits.upload_bytes else 400
        return JSONResponse({"error": str(e)}, status_code=status)


async def _serve_tab(websocket, state, limits: Limits) -> None:
    """WS /ws: one training session per connection while a slot is free (see live.Tab)."""
    await websocket.accept()
    if len(state.tabs) >= limits.sessions:
        await websocket.send_json({"type": "error", "message": f"{limits.sessions} "
                                   "playground tabs are training already; close one"})
        await websocket.close(code=1013)
        return
    uploads = state.uploads.for_page(websocket.query_params.get("token"))
    tab = Tab(websocket, limits, uploads, state.workers, state.stopping)
    state.tabs.add(tab)
    try:
        await tab.run()
    finally:
        state.tabs.discard(tab)
    if not tab.gone:  # the server stops (or the tab ended): say so, 1001 = going away
        try:
            await websocket.close(code=1001 if state.stopping.is_set() else 1000)
        except Exception:  # noqa: BLE001 - the page closed it meanwhile
            pass
