"""Rendering pages: the Jinja environment, the page context every domain uses, and headers.

A domain's route renders a page like this:

    from territoire.web.templating import Page

    @router.get("/alarms", response_class=HTMLResponse)
    def alarms(page: Page, session: DbSession) -> HTMLResponse:
        return page.render("rules/alarms.html", {"alarms": ...})

`Page` requires a signed-in principal with the READ permission; for another permission
declare `OperatorPage = Annotated[PageContext, Depends(page_for(Permission.OPERATE))]`.
`PublicPage` serves anonymous pages (its `principal` may be None). Templates get `_`,
`gettext`, `ngettext`, the filters `number`, `datetime` and `date` (Europe/Paris, in the
page's language), and the variables listed in `PageContext.base_context`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from territoire import __version__
from territoire.config import Settings
from territoire.errors import NotAuthenticated
from territoire.http import (
    LANGUAGE_COOKIE,
    PRE_SESSION_COOKIE,
    AppSettings,
    DbSession,
    csrf_token_for,
    optional_principal,
    requires,
)
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant, User
from territoire.tenancy.permissions import Permission
from territoire.tenancy.service import Principal
from territoire.web.i18n import LANGUAGES, PACKAGE_DIR, Translator, choose_language, translator
from territoire.web.labels import ROLE_LABELS, type_label
from territoire.web.nav import nav_entries

WEB_TEMPLATES = PACKAGE_DIR / "web" / "templates"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
PRE_SESSION_MAX_AGE = 2 * 3600


def template_dirs() -> list[Path]:
    """The web shell's templates first (its layout wins), then every domain's folder.

    Domains keep their templates in `<domain>/templates/<domain>/` and name them
    `"<domain>/<page>.html"`, so that two domains never shadow each other.
    """
    others = sorted(path for path in PACKAGE_DIR.glob("*/templates") if path != WEB_TEMPLATES)
    return [WEB_TEMPLATES, *others]


@pass_context
def _number(context: Context, value: float | int | None, digits: int | None = None) -> str:
    return _translator_of(context).format_number(value, digits)


@pass_context
def _datetime(context: Context, value: Any, style: str = "medium") -> str:
    return _translator_of(context).format_datetime(value, style)


@pass_context
def _date(context: Context, value: Any, style: str = "medium") -> str:
    return _translator_of(context).format_date(value, style)


def _translator_of(context: Context) -> Translator:
    found = context.get("translator")
    return found if isinstance(found, Translator) else translator("fr")


def static_url(path: str) -> str:
    """A static file's URL, versioned so that an upgrade is never hidden by a cache."""
    return f"/static/{path}?v={__version__}"


def entity_url(urn: str) -> str:
    return "/entities/" + quote(urn, safe=":@~")


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(path) for path in template_dirs()]),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Placeholders for templates rendered outside a request; each page passes its own.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(number=_number, datetime=_datetime, date=_date)
    env.globals.update(
        static_url=static_url,
        entity_url=entity_url,
        type_label=type_label,
        app_version=__version__,
    )
    return env


def content_security_policy(settings: Settings) -> str:
    """No inline script or style anywhere; images may also come from the tile server."""
    images = "'self' data:"
    tiles = tile_origin(settings.tile_url)
    if tiles:
        images += f" {tiles}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def tile_origin(tile_url: str) -> str | None:
    """The CSP source of an XYZ template, a `{s}` subdomain placeholder becoming `*`."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "tiles-subdomain"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.netloc.replace("tiles-subdomain", "*")
    if "{" in host:
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@dataclass
class PageContext:
    """Who is looking, in which language, and how to render a page for them."""

    request: Request
    settings: Settings
    translator: Translator
    principal: Principal | None = None
    tenant: Tenant | None = None
    user: User | None = None
    tenant_count: int = 0
    language_asked: str | None = None
    cookies: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def tenant_id(self) -> int:
        """The tenant every query of a signed-in page is scoped to."""
        if self.principal is None:
            raise NotAuthenticated("sign in to see this page")
        return self.principal.tenant_id

    @property
    def language(self) -> str:
        return self.translator.language

    def gettext(self, message: str, **variables: Any) -> str:
        return self.translator.gettext(message, **variables)

    @property
    def csrf_token(self) -> str | None:
        if self.principal is None or self.principal.session_key_hash is None:
            return None
        return csrf_token_for(self.settings, self.principal.session_key_hash)

    def pre_session_csrf_token(self) -> str:
        """The CSRF token of an anonymous form, bound to a random pre-session cookie."""
        if PRE_SESSION_COOKIE in self.cookies:
            seed = self.cookies[PRE_SESSION_COOKIE][0]
        else:
            seed = self.request.cookies.get(PRE_SESSION_COOKIE) or ""
        if len(seed) < 32:
            seed = secrets.token_urlsafe(32)
            self.cookies[PRE_SESSION_COOKIE] = (seed, PRE_SESSION_MAX_AGE)
        return csrf_token_for(self.settings, seed)

    def language_links(self) -> list[dict[str, Any]]:
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        return [
            {
                "code": code,
                "name": name,
                "url": self.request.url.path + "?" + urlencode([*params, ("lang", code)]),
                "current": code == self.language,
            }
            for code, name in LANGUAGES.items()
        ]

    def nav(self) -> list[dict[str, Any]]:
        path = self.request.url.path
        return [
            {
                "key": entry.key,
                "label": self.gettext(entry.label),
                "path": entry.path,
                "current": entry.is_current(path),
            }
            for entry in nav_entries(self.principal.role if self.principal else None)
        ]

    def base_context(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "page": self,
            "lang": self.language,
            "translator": self.translator,
            **self.translator.template_callables(),
            "languages": self.language_links(),
            "principal": self.principal,
            "role": self.principal.role.value if self.principal else None,
            "role_label": ROLE_LABELS[self.principal.role] if self.principal else None,
            "tenant": self.tenant,
            "user": self.user,
            "tenant_count": self.tenant_count,
            "csrf_token": self.csrf_token,
            "nav": self.nav(),
            "current_path": self.request.url.path,
        }

    def render(
        self,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        values = {**self.base_context(), **(context or {})}
        html = environment().get_template(name).render(values)
        response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
        self.finish(response)
        return response

    def finish(self, response: Response) -> None:
        """Headers every HTML answer carries, and the cookies the page asked for."""
        response.headers["Content-Security-Policy"] = content_security_policy(self.settings)
        response.headers["Content-Language"] = self.language
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie, HX-Request"
        if self.language_asked:
            self.cookies[LANGUAGE_COOKIE] = (self.language_asked, LANGUAGE_COOKIE_MAX_AGE)
        for name, (value, max_age) in self.cookies.items():
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                httponly=name != LANGUAGE_COOKIE,
                samesite="lax",
                secure=self.settings.cookie_secure,
                path="/",
            )

    def redirect(self, url: str, status_code: int = 303) -> Response:
        response = Response(status_code=status_code, headers={"Location": url})
        self.finish(response)
        return response


def _language(request: Request, settings: Settings, user: User | None) -> tuple[str, str | None]:
    """The language to show, and the one asked for by `?lang=` (to remember in a cookie)."""
    asked = request.query_params.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked, asked
    chosen = choose_language(
        request.cookies.get(LANGUAGE_COOKIE),
        user.language if user else None,
        default=settings.default_language,
    )
    return chosen, None


def build_page(
    request: Request, session: DbSession, settings: Settings, principal: Principal | None
) -> PageContext:
    tenant = tenancy.get_tenant(session, principal.tenant_id) if principal else None
    user = tenancy.get_user(session, principal.user_id) if principal and principal.user_id else None
    language, asked = _language(request, settings, user)
    return PageContext(
        request=request,
        settings=settings,
        translator=translator(language),
        principal=principal,
        tenant=tenant,
        user=user,
        tenant_count=len(tenancy.memberships_of(session, user.id)) if user else 0,
        language_asked=asked,
    )


def page_for(permission: Permission) -> Callable[..., PageContext]:
    """A dependency giving the page context of a principal holding `permission`.

    State-changing requests made with a session cookie must carry the CSRF token
    (form field `csrf_token` or header `X-CSRF-Token`).
    """
    holder = requires(permission)

    # A default rather than an annotation: annotations are strings here, and `holder`
    # is local, so FastAPI could not resolve it from an annotation.
    def dependency(
        request: Request,
        session: DbSession,
        settings: AppSettings,
        principal: Principal = Depends(holder),  # noqa: B008
    ) -> PageContext:
        return build_page(request, session, settings, principal)

    return dependency


def public_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> PageContext:
    return build_page(request, session, settings, principal)


Page = Annotated[PageContext, Depends(page_for(Permission.READ))]
PublicPage = Annotated[PageContext, Depends(public_page)]
