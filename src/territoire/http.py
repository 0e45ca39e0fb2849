"""Shared HTTP plumbing: database session, settings and the acting principal.

Every domain's routes depend on these; none of them holds business logic.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from hashlib import sha256
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy.orm import Session

from territoire.config import Settings
from territoire.db import Database
from territoire.errors import DomainError, Forbidden, NotAuthenticated
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.tenancy.service import Principal

SESSION_COOKIE = "territoire_session"
PRE_SESSION_COOKIE = "territoire_presession"
LANGUAGE_COOKIE = "territoire_lang"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfRejected(DomainError):
    status_code = 403
    code = "csrf_rejected"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    with get_database(request).session() as session:
        yield session


# Function scope: the commit happens before the response is sent, never after.
DbSession = Annotated[Session, Depends(db_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


def cookie_signer(settings: Settings) -> TimestampSigner:
    return TimestampSigner(settings.effective_secret_key(), salt="territoire.session")


def sign_session_key(settings: Settings, key: str) -> str:
    return cookie_signer(settings).sign(key).decode()


def _session_key_from_cookie(request: Request, settings: Settings) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        key = cookie_signer(settings).unsign(cookie, max_age=settings.session_max_age_seconds)
    except BadSignature:
        return None
    return key.decode()


def optional_principal(
    request: Request, session: DbSession, settings: AppSettings
) -> Principal | None:
    """A bearer API token wins over a session cookie; neither gives None."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
        principal = tenancy.resolve_api_token(session, credentials.strip())
        if principal is None:
            raise NotAuthenticated("unknown, expired or revoked API token")
        return principal
    key = _session_key_from_cookie(request, settings)
    return tenancy.resolve_session(session, key) if key else None


def csrf_token_for(settings: Settings, seed: str) -> str:
    """A token bound to the session (or pre-session) key, so it cannot be forged elsewhere."""
    secret = settings.effective_secret_key().encode()
    return hmac.new(secret, ("csrf:" + seed).encode(), sha256).hexdigest()


async def submitted_csrf_token(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, settings: Settings, seed: str) -> None:
    expected = csrf_token_for(settings, seed)
    if not hmac.compare_digest(expected, await submitted_csrf_token(request)):
        raise CsrfRejected("missing or wrong CSRF token; reload the page and try again")


def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise NotAuthenticated("sign in or give an API token")
    return principal


async def protected_principal(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    settings: AppSettings,
) -> Principal:
    """The principal, after checking CSRF for state-changing requests made with a cookie."""
    if request.method in UNSAFE_METHODS and principal.session_key_hash is not None:
        await check_csrf(request, settings, principal.session_key_hash)
    return principal


def requires(permission: Permission) -> Callable[..., Any]:
    def dependency(principal: Annotated[Principal, Depends(protected_principal)]) -> Principal:
        if not allows(principal.role, permission):
            raise Forbidden(f"the role '{principal.role.value}' may not {permission.value}")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(requires(Permission.READ))]
RegistryEditor = Annotated[Principal, Depends(requires(Permission.EDIT_REGISTRY))]
Administrator = Annotated[Principal, Depends(requires(Permission.ADMINISTER))]


def set_session_cookie(response: Any, settings: Settings, key: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sign_session_key(settings, key),
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Any) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
