"""Who may talk to the playground: this machine's own page, and nothing a foreign page sends.

The server has no login, so the browser's own rules are what keep other web sites out.  Three
kinds of request get through them unless the server itself says no:

* **DNS rebinding**: a site makes its own name resolve to 127.0.0.1, and its page then reads the
  playground as "same origin".  The request still carries that name in ``Host``, so only
  localhost names, loopback and other IP literals (which no rebinding can fake) and the name the
  server was started with are accepted; anything else gets 421.
* **Cross-site WebSocket hijacking**: browsers let any page open ``ws://127.0.0.1:PORT/ws``, but
  they always send that page's ``Origin``.  A WebSocket (or a POST) whose ``Origin`` is not the
  server's own (scheme://Host) is refused with 403.  Clients without ``Origin`` are not browsers
  (curl, the tests, the benchmark) and no web page can make a request without it.
* **Blind ``no-cors`` POSTs**: a form or ``fetch(..., {mode: "no-cors"})`` can post across
  origins, but cannot set a custom header.  Uploads need ``X-Playground-Token``, a per-page token
  the page reads from ``/api/meta`` (a foreign page cannot read that answer: no CORS headers).

Every HTTP answer also carries a Content-Security-Policy (scripts only from this server, no
inline script, no framing) and ``X-Frame-Options: DENY``.
"""
from __future__ import annotations

import ipaddress
import json

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
TOKEN_HEADER = "x-playground-token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def split_host(host: str) -> tuple[str, str]:
    """``Host`` header → (name, port); IPv6 literals keep no brackets (``[::1]:80`` → ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_allowed(host: str, bound: str = "127.0.0.1") -> bool:
    """May a request with this ``Host`` header be answered?  (See the module's docstring.)"""
    name, port = split_host(host)
    if not name or (port and not port.isdigit()):
        return False
    if name.rstrip(".") in LOCAL_NAMES or name == bound.lower().strip("[]"):
        return True
    ip = _ip(name)
    if ip is None:
        return False  # a DNS name: could be rebound to this machine
    return ip.is_loopback or bound in ("0.0.0.0", "::", "")


def origin_allowed(origin: str, host: str) -> bool:
    """The page's ``Origin`` must be this server itself, as the ``Host`` header names it."""
    return origin.lower() in (f"http://{host.lower()}", f"https://{host.lower()}")


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


class Guard:
    """ASGI middleware: the Host and Origin checks for HTTP and WebSocket, and the headers."""

    def __init__(self, app, bound: str = "127.0.0.1"):
        self.app, self.bound = app, bound
        self.state = getattr(app, "state", None)  # the wrapped FastAPI app's state

    def openapi(self) -> dict:
        return self.app.openapi()

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = _header(scope, b"host") or ""
        origin = _header(scope, b"origin")
        if not host_allowed(host, self.bound):
            why = (f"this playground answers to localhost only, not to Host {host[:80]!r} "
                   "(a page from another site may have resolved its name to this machine)")
            return await self._refuse(kind, send, receive, 421, why)
        unsafe = kind == "websocket" or scope.get("method") not in ("GET", "HEAD", "OPTIONS")
        if unsafe and origin is not None and not origin_allowed(origin, host):
            why = f"requests from the page at {origin[:80]!r} are not accepted: open the playground itself"
            return await self._refuse(kind, send, receive, 403, why)
        if kind == "websocket":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", [])
                           if h[0].lower() not in dict(SECURITY_HEADERS)]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(kind, send, receive, status: int, why: str) -> None:
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
            return
        body = json.dumps({"error": why}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())] + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": body})
