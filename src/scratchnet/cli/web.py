"""``scratchnet playground``: the live training page, served locally (FastAPI + uvicorn)."""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
import webbrowser

from ..core.errors import ScratchnetError


def register(sub) -> None:
    p = sub.add_parser("playground", help="a live web page to train and watch a network",
                       description="Serve the playground page on this machine (no internet "
                       "needed) and open it in the browser: choose or upload data, build a "
                       "network, press Play and watch it learn, hover a weight for its formula.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_playground)


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise ScratchnetError(f"--port must be 1 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ScratchnetError(f"--host {host}: cannot resolve it ({e})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise ScratchnetError(f"cannot listen on {host}:{port} ({e.strerror}): is another "
                                  f"playground running? try --port {port + 1}") from None


WS_MAX_BYTES = 1 << 20  # uvicorn closes a socket whose message is larger (the app's own
# limit, 64 KiB, drops a message with a reason; this one keeps 12 MB messages out of memory)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def url_host(host: str) -> str:
    """The host part of the page's URL: the wildcards open on loopback, IPv6 in brackets."""
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def exposure_warning(host: str) -> str | None:
    """What listening on ``host`` means, when other machines can reach it (None otherwise)."""
    if host in LOOPBACK:
        return None
    shown = f"[{host}]" if ":" in host else host
    everyone = " (every network interface)" if host in ("0.0.0.0", "::") else ""
    return (f"listening on {shown}{everyone}: the playground has no authentication, so "
            "anyone who can reach this machine on that port can use it, train on it and "
            "upload files to it. Use the default 127.0.0.1 unless you trust the network.")


def cmd_playground(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as e:
        raise ScratchnetError(f"the playground needs the web extras ({e.name} is missing): "
                              "pip install 'scratchnet[web]'") from None
    try:
        import websockets  # noqa: F401 - uvicorn serves WebSockets with it
    except ImportError:
        try:
            import wsproto  # noqa: F401
        except ImportError:
            raise ScratchnetError("the playground streams over WebSockets, which uvicorn "
                                  "serves with the 'websockets' package: pip install "
                                  "websockets") from None
    _check_port(args.host, args.port)
    url = f"http://{url_host(args.host)}:{args.port}/"
    warning = exposure_warning(args.host)
    if warning:
        print(f"scratchnet: warning: {warning}", file=sys.stderr)
    print(f"scratchnet playground: {url}  (Ctrl-C to stop)", flush=True)
    app = create_app(host=args.host)
    config = uvicorn.Config(app, host=args.host, port=args.port,
                            log_level="warning", ws="auto", ws_max_size=WS_MAX_BYTES,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    if not args.no_browser:
        def open_when_up():
            for _ in range(100):  # up to 10 s for the server to start
                if server.started:
                    webbrowser.open(url)
                    return
                time.sleep(0.1)

        threading.Thread(target=open_when_up, daemon=True).start()
    try:
        server.run()
    finally:
        if app.state.workers.busy:  # Ctrl-C mid-slice: the slice's result is nobody's (no
            # file is written by the playground), and the interpreter's exit would wait for it
            print("scratchnet: interrupted", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(130)
    return 0
