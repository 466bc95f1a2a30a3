"""The last line of error handling (ASGI middleware): an unexpected exception in any handler is one
structured log line (`internal_error`, traceback in a field) and a JSON 500; a client that went away
mid-request is not an error at all (`client_disconnected`, level info, nothing answered).

Starlette's own `Exception` handler cannot do this: its ServerErrorMiddleware re-raises after the
handler answered, and uvicorn then prints the traceback bare on stderr. This middleware sits inside
it and never re-raises, so nothing reaches uvicorn.
"""

from __future__ import annotations

import traceback

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.observe import log_event
from shipyard.server._http import error_response


class ErrorBoundary:
    """Wraps the app: exceptions become a log line and (when no answer has started) a JSON 500.

    Args:
        app: the ASGI app inside.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except ClientDisconnect:  # the client closed before sending its whole request
            log_event("client_disconnected", method=scope["method"], path=scope["path"])
        except Exception as exc:
            log_event(
                "internal_error",
                level="error",
                method=scope["method"],
                path=scope["path"],
                error=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )
            if not started:
                answer = error_response(
                    500, "internal error; the server log has the details", type="internal_error"
                )
                await answer(scope, receive, send)
