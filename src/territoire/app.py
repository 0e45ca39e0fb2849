"""FastAPI application factory: assembles the domains' routers and the shared plumbing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from territoire import __version__, events
from territoire.config import Settings, load_settings
from territoire.db import Database
from territoire.errors import DomainError, FieldProblem, NotAuthenticated
from territoire.web.errors import install_html_errors

log = logging.getLogger("territoire")
STATIC_DIR = Path(__file__).parent / "web" / "static"


def error_body(
    code: str, message: str, problems: list[FieldProblem] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "problems": [{"field": p.field, "reason": p.reason} for p in problems or []],
        }
    }


def error_response(path: str, status_code: int, code: str, message: str) -> Response:
    """The error answer for a path: Open311's own error list under /open311/, our JSON
    envelope elsewhere. Used where no domain route ran (unknown path, body too large)."""
    if path.startswith("/open311/"):
        from territoire.requests.open311_format import error_response as open311_error

        return open311_error("xml" if path.endswith(".xml") else "json", status_code, message)
    return JSONResponse(error_body(code, message), status_code=status_code)


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/ngsi-ld/", "/open311/", "/ogcapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


class BodySizeLimit:
    """Refuse request bodies over a limit with 413, whether or not Content-Length is sent.

    When a streamed body crosses the limit, the 413 is sent at once and the application
    is told the client went away, so it stops reading and stores nothing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = error_response(
            scope["path"],
            413,
            "payload_too_large",
            f"request body larger than {self.max_bytes} bytes",
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, error: NotAuthenticated) -> Response:
        if wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        return JSONResponse(error_body(error.code, error.message), status_code=401)

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> Response:
        return JSONResponse(
            error_body(error.code, error.message, error.problems), status_code=error.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> Response:
        problems = [
            FieldProblem(
                ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body",
                str(item.get("msg", "invalid")),
            )
            for item in error.errors()
        ]
        message = "; ".join(f"{p.field}: {p.reason}" for p in problems) or "invalid request"
        return JSONResponse(error_body("invalid", message, problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        response = error_response(request.url.path, error.status_code, code, str(error.detail))
        response.headers.update(getattr(error, "headers", None) or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> Response:
        log.exception("unexpected error", exc_info=error)
        return JSONResponse(
            error_body("internal", "unexpected error; it has been logged"), status_code=500
        )


class SecurityHeaders:
    """Security headers on every HTTP response that does not set them itself. A plain ASGI
    middleware: `@app.middleware("http")` costs a task and a stream copy per request."""

    HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _security_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or load_settings()
    settings.ensure_data_dir()
    app = FastAPI(
        title="Territoire",
        version=__version__,
        description="Open platform for connected territories.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    events.install_listeners()
    app.state.settings = settings
    app.state.database = database or Database(settings.effective_database_url)
    _install_error_handlers(app)
    install_html_errors(app, wants_html)
    _security_headers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in domain_routers():
        app.include_router(router)
    return app


def domain_routers() -> list[Any]:
    """Each domain contributes its router here: the one place where domains are assembled."""
    from territoire.alarms.api import router as alarms_router
    from territoire.interventions.api import router as interventions_router
    from territoire.live.routes import router as live_router
    from territoire.registry.api import router as registry_router
    from territoire.requests.api import router as requests_router
    from territoire.rules.api import router as rules_router
    from territoire.telemetry.api import router as telemetry_router
    from territoire.tenancy.api import router as tenancy_router
    from territoire.web.routes import router as web_router

    return [
        tenancy_router,
        registry_router,
        telemetry_router,
        alarms_router,
        interventions_router,
        requests_router,
        rules_router,
        live_router,
        web_router,
    ]
