"""What every request passes before a route sees it (pure ASGI, so streamed answers pass straight through).

In order: the Host (a web page's own name rebound to 127.0.0.1 is refused while we listen on loopback),
the browser Origin (a page may use the API only if its origin was allowed; CORS preflight is answered
for those alone), the API key (everything but a bare liveness answer on /health), a JSON content type
for bodies (so a page can't send a "simple" text/plain POST), and the body size (by Content-Length,
then counted while reading, before anything parses it).
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.datastructures import Headers

from server.errors import APIError

LIVENESS = "/health"  # answers without the key, but then only {"status": ...}
PREFLIGHT_HEADERS = [(b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                     (b"access-control-allow-headers", b"authorization, content-type"),
                     (b"access-control-max-age", b"600")]


def default_max_body(context_length: int) -> int:
    """Bytes a request body may have: room for a full context of text with JSON's escaping, at least 4 MiB."""
    return max(4 << 20, 64 * context_length)


def is_loopback_name(host: str) -> bool:
    """A Host header naming this computer itself ("localhost:8000", "127.0.0.1", "[::1]:8000")."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 address, maybe with a port: [::1]:8000
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.split(":")[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Gate:
    def __init__(self, app, api_key: str | None = None, allowed_origins=(), max_body: int = 4 << 20,
                 loopback_only: bool = True):
        self.app = app
        self.key = f"Bearer {api_key}".encode() if api_key else None
        self.origins = {o.rstrip("/") for o in allowed_origins}
        self.max_body = max_body
        self.loopback_only = loopback_only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            receive, send = await self._check(scope, receive, send)
        except APIError as e:
            return await e.response()(scope, receive, send)
        if receive is not None:
            await self.app(scope, receive, send)

    async def _check(self, scope, receive, send):
        headers = Headers(scope=scope)
        method = scope["method"]
        if self.loopback_only and not is_loopback_name(headers.get("host", "")):
            raise APIError(403, "This server answers only requests addressed to this computer (Host localhost or "
                                "127.0.0.1); a web page's own name pointing here is refused.", code="host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            raise APIError(403, f"Requests from web pages are refused unless their origin is allowed; {origin[:100]!r} "
                                "is not (start the server with --allow-origin ORIGIN to allow it).",
                           code="origin_not_allowed")
        if method == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 204,
                        "headers": [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
                                    *PREFLIGHT_HEADERS]})
            await send({"type": "http.response.body", "body": b""})
            return None, send
        scope.setdefault("state", {})["authorized"] = self._authorized(headers)
        if not scope["state"]["authorized"] and not (scope["path"] == LIVENESS and method == "GET"):
            raise APIError(401, "A valid API key is required: send it as 'Authorization: Bearer KEY'.",
                           code="invalid_api_key")
        if origin is not None:
            send = _with_cors(send, origin)
        if method in ("POST", "PUT", "PATCH"):
            receive = await self._body(headers, receive)
        return receive, send

    def _authorized(self, headers: Headers) -> bool:
        if self.key is None:
            return True
        return hmac.compare_digest(headers.get("authorization", "").encode(), self.key)

    async def _body(self, headers: Headers, receive):
        """The whole body, read here with its size checked; the route reads it again from the replay."""
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        empty = headers.get("content-length") == "0"  # nothing to read: the route says what is missing
        if kind != "application/json" and not empty:
            raise APIError(415, "Send the body as JSON with the header 'Content-Type: application/json'.",
                           code="unsupported_media_type")
        too_big = APIError(413, f"The request body is larger than this server accepts ({self.max_body:,} bytes); "
                                "send less, or start the server with a larger --max-body.", code="body_too_large")
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            raise too_big
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when the client goes away

        return replay


def _with_cors(send, origin: str):
    """An allowed origin's answers carry the header that lets its page read them."""

    async def send_with_cors(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                              (b"access-control-allow-origin", origin.encode()),
                                              (b"vary", b"Origin")]}
        await send(message)

    return send_with_cors
