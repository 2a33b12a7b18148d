"""The Studio's guard: loopback Host only, a secret token, a CSRF header, and Server-Timing.

Like Jupyter, the server prints a URL with a random token. The first request
carrying it gets the token as an HttpOnly, SameSite=Strict cookie and is
redirected to the same address without it; after that the cookie is the
pass. So:

- another site cannot read or drive the Studio: its requests carry no cookie
  (SameSite=Strict), and a DNS-rebinding page cannot either, because the Host
  header must be 127.0.0.1 or localhost with the Studio's port;
- every POST must also carry ``X-Studio-CSRF`` (htmx sends it from the page);
  a cross-site form cannot set a header, so a forged POST is refused.

Each response carries ``Server-Timing: app;dur=<ms>``, the time from the
request's arrival to its response head, which the browser tests read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["CSRF_HEADER", "Guard", "new_token"]

CSRF_HEADER = "x-studio-csrf"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """A fresh random token for the Studio's URL."""
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware: refuses what does not come from this Studio's own page."""

    def __init__(self, app: ASGIApp, *, token: str, port: int) -> None:
        self.app = app
        self.token = token
        self.port = port
        self.cookie = f"querykit_studio_{port}"
        self.csrf = hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request without the token, Host or CSRF it needs before the app sees it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode()))
                message["headers"] = headers
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, text = refusal
            await _plain(timed, status, text)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            if not hmac.compare_digest(query["token"], self.token):
                await _plain(timed, 403, "wrong Studio token: open the URL querykit studio printed")
                return
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            await timed(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", location.encode()),
                        (
                            b"set-cookie",
                            f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode(),
                        ),
                    ],
                }
            )
            await timed({"type": "http.response.body", "body": b""})
            return
        if not self._has_cookie(headers):
            await _plain(
                timed,
                403,
                "this Studio needs its token: open the URL that querykit studio printed",
            )
            return
        if scope["method"] not in ("GET", "HEAD") and not hmac.compare_digest(
            headers.get(CSRF_HEADER, ""), self.csrf
        ):
            await _plain(timed, 403, "refused: this request did not come from the Studio's page")
            return
        scope.setdefault("state", {})["csrf"] = self.csrf
        await self.app(scope, receive, timed)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return 400, f"refused: Host {host!r} is not this Studio (127.0.0.1:{self.port})"
        origin = headers.get("origin")
        if origin is not None and origin not in (
            f"http://127.0.0.1:{self.port}",
            f"http://localhost:{self.port}",
        ):
            return 403, f"refused: a request from {origin}"
        return None

    def _has_cookie(self, headers: dict[str, str]) -> bool:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: no pass
            return False
        morsel = jar.get(self.cookie)
        return morsel is not None and hmac.compare_digest(morsel.value, self.token)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
