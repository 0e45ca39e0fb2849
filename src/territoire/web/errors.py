"""Error pages for people: the JSON error handlers answer machines, these answer browsers.

`install_html_errors` wraps the application's JSON handlers: when the client asks for
HTML, the same status and message are shown in the layout instead of a JSON body.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from territoire.config import Settings
from territoire.db import Database
from territoire.errors import DomainError, NotAuthenticated
from territoire.http import LANGUAGE_COOKIE, optional_principal
from territoire.web.i18n import N_, choose_language, translator
from territoire.web.templating import PageContext, build_page, local_path

log = logging.getLogger("territoire.web")

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

TITLES: dict[int, tuple[str, str]] = {
    400: (N_("Invalid request"), N_("The request could not be understood.")),
    401: (N_("Sign-in required"), N_("Sign in to see this page.")),
    403: (N_("Access denied"), N_("Your role does not allow this action.")),
    404: (N_("Page not found"), N_("This page does not exist, or not in your collectivity.")),
    405: (N_("Invalid request"), N_("This address does not accept this kind of request.")),
    409: (N_("Conflict"), N_("This change conflicts with the current state.")),
    413: (N_("Too large"), N_("What you sent is too large.")),
    422: (N_("Invalid request"), N_("Some values are not valid.")),
    500: (N_("Something went wrong"), N_("An unexpected error occurred; it has been logged.")),
}


def install_html_errors(app: FastAPI, wants_html: Callable[[Request], bool]) -> None:
    """Wrap the JSON handlers already installed so that browsers get an HTML page."""
    for error_class in (DomainError, StarletteHTTPException, RequestValidationError, Exception):
        fallback = app.exception_handlers.get(error_class)
        if fallback is not None:
            app.add_exception_handler(error_class, _html_or(fallback, wants_html))
    sign_in_handler = app.exception_handlers.get(NotAuthenticated)
    if sign_in_handler is not None:
        app.add_exception_handler(NotAuthenticated, _htmx_sign_in(sign_in_handler))


def _htmx_sign_in(fallback: Handler) -> Handler:
    """An htmx request whose session ended sends the whole page to the sign-in form,
    rather than swapping the form into a fragment of the page."""

    async def handler(request: Request, error: Any) -> Response:
        if request.headers.get("hx-request") != "true":
            return await _call(fallback, request, error)
        current = urlsplit(request.headers.get("hx-current-url", ""))
        target = local_path(current.path + (f"?{current.query}" if current.query else ""))
        login = "/login?next=" + quote(target, safe="/")
        return Response(status_code=401, headers={"HX-Redirect": login})

    return handler


def _html_or(fallback: Handler, wants_html: Callable[[Request], bool]) -> Handler:
    async def handler(request: Request, error: Any) -> Response:
        response = await _call(fallback, request, error)
        if not wants_html(request):
            return response
        message = _message_of(response)
        page = await run_in_threadpool(
            error_page, request, response.status_code, message, _keep_headers(response)
        )
        return page

    return handler


async def _call(handler: Handler, request: Request, error: Any) -> Response:
    answer = handler(request, error)
    return await answer if inspect.isawaitable(answer) else answer


def _message_of(response: Response) -> str:
    try:
        body = orjson.loads(bytes(response.body))
        return str(body["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ""


def _keep_headers(response: Response) -> dict[str, str]:
    kept = {"allow", "www-authenticate", "retry-after"}
    return {name: value for name, value in response.headers.items() if name in kept}


def error_page(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    page = _page_for_error(request)
    title, explanation = TITLES.get(status_code, TITLES[500 if status_code >= 500 else 400])
    return page.render(
        "error.html",
        {
            "status_code": status_code,
            "title": page.gettext(title),
            "explanation": page.gettext(explanation),
            "detail": message,
        },
        status_code=status_code,
        headers=headers,
    )


def _page_for_error(request: Request) -> PageContext:
    """The signed-in layout when the session can be read; a bare one otherwise."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    try:
        with database.session() as session:
            principal = optional_principal(request, session, settings)
            return build_page(request, session, settings, principal)
    except Exception:  # the error being shown may be the database itself
        log.debug("error page without session details", exc_info=True)
    language = choose_language(
        request.cookies.get(LANGUAGE_COOKIE), default=settings.default_language
    )
    return PageContext(request=request, settings=settings, translator=translator(language))
