"""The playground's FastAPI application: the page, its assets, uploads and the WebSocket.

    GET  /             the page (static/index.html); /static/* its JS and CSS — no CDN
    GET  /healthz      {"status": "ok", ...}
    GET  /api/meta     data sets, activations, losses (with formulas), limits, engine options
    POST /api/upload   a CSV file (multipart field "file") → its id and columns
    WS   /ws           one training session per connection (see live.py)

FastAPI is imported here only, and this module only when the playground starts.
"""
# (no `from __future__ import annotations`: FastAPI reads the handlers' local type hints)

from dataclasses import asdict
from importlib import resources

from .. import __version__
from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..core.losses import LOSSES
from ..core.network import INITS
from ..training.train import select_engine
from .inputs import DATASETS, Uploads, previews
from .live import Tab
from .session import Limits, PlaygroundError, engine_options

STATIC = resources.files("scratchnet") / "web" / "static"


def create_app(limits: Limits | None = None):
    """A new playground application (its own uploads and open-tab count)."""
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    limits = limits or Limits()
    app = FastAPI(title="scratchnet playground", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.limits = limits
    app.state.uploads = Uploads(limits)
    app.state.open_tabs = 0
    app.state.previews = previews()
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "version": __version__, "open_tabs": app.state.open_tabs}

    @app.get("/api/meta")
    def meta():
        return {
            "datasets": DATASETS,
            "activations": list(HIDDEN_ACTIVATIONS), "outputs": list(OUTPUT_ACTIVATIONS),
            "losses": {k: v.formula for k, v in LOSSES.items()}, "inits": list(INITS),
            "limits": asdict(limits), "engine": select_engine("auto")[0],
            "options": engine_options(), "version": __version__,
            "previews": app.state.previews,
        }

    @app.post("/api/upload")
    async def upload(request: Request):
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > limits.upload_bytes + 64_000:
            return JSONResponse({"error": f"the upload has {int(size):,} bytes; the "
                                 f"playground takes CSV files up to {limits.upload_bytes:,} "
                                 "bytes"}, status_code=413)
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as e:  # noqa: BLE001 - a malformed multipart body
            return JSONResponse({"error": f"not a file upload ({e})"}, status_code=400)
        try:
            f = form.get("file")
            if f is None or isinstance(f, str):
                return JSONResponse({"error": "no file in the upload (field 'file')"},
                                    status_code=400)
            data = await f.read(limits.upload_bytes + 1)
        finally:
            await form.close()
        try:
            return app.state.uploads.add(f.filename or "upload.csv", data)
        except PlaygroundError as e:
            status = 413 if len(data) > limits.upload_bytes else 400
            return JSONResponse({"error": str(e)}, status_code=status)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await websocket.accept()
        if app.state.open_tabs >= limits.sessions:
            await websocket.send_json({"type": "error", "message": f"{limits.sessions} "
                                       "playground tabs are training already; close one"})
            await websocket.close(code=1013)
            return
        app.state.open_tabs += 1
        try:
            await Tab(websocket, limits, app.state.uploads).run()
        finally:
            app.state.open_tabs -= 1

    return app
