"""Tenancy services: the only way other domains touch tenants, communes, users and tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, NotFound, invalid
from territoire.geo import validate_area
from territoire.tenancy.models import (
    ApiToken,
    Commune,
    Membership,
    Role,
    Tenant,
    TenantKind,
    User,
    UserSession,
)
from territoire.tenancy.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
INSEE_PATTERN = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "trt_"  # noqa: S105  (a prefix that makes leaked tokens easy to scan for)


@dataclass(frozen=True)
class Principal:
    """Who is acting, for which tenant, with which role: what every scoped query needs."""

    tenant_id: int
    role: Role
    user_id: int | None = None
    token_id: int | None = None
    session_key_hash: str | None = None

    @property
    def via_session(self) -> bool:
        return self.session_key_hash is not None


def digest(secret: str) -> str:
    """SHA-256 suffices for random high-entropy secrets (tokens, session keys)."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- tenants -------------------------------------------------------------------------


def is_valid_siren(siren: str) -> bool:
    """SIREN numbers are 9 digits whose Luhn checksum is valid."""
    if not re.fullmatch(r"\d{9}", siren):
        return False
    total = 0
    for position, char in enumerate(reversed(siren)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def create_tenant(
    session: Session, *, slug: str, name: str, siren: str, kind: TenantKind
) -> Tenant:
    if not SLUG_PATTERN.match(slug):
        raise invalid("slug", "lowercase letters, digits and hyphens, 1 to 63 characters")
    if not name.strip():
        raise invalid("name", "must not be empty")
    if not is_valid_siren(siren):
        raise invalid("siren", "a SIREN is 9 digits with a valid Luhn checksum")
    if session.scalar(select(Tenant.id).where((Tenant.slug == slug) | (Tenant.siren == siren))):
        raise AlreadyExists(f"a tenant with slug '{slug}' or SIREN {siren} exists")
    tenant = Tenant(slug=slug, name=name.strip(), siren=siren, kind=kind)
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


def find_tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.slug == slug))


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


# --- communes ------------------------------------------------------------------------


def create_commune(
    session: Session,
    tenant_id: int,
    *,
    insee_code: str,
    name: str,
    boundary: dict[str, Any] | None,
    population: int | None = None,
) -> Commune:
    if not INSEE_PATTERN.match(insee_code):
        raise invalid("insee_code", "an INSEE code is 5 characters (digits, or 2A/2B + 3 digits)")
    if not name.strip():
        raise invalid("name", "must not be empty")
    if boundary is not None:
        validate_area(boundary, "boundary")
    exists = session.scalar(
        select(Commune.id).where(Commune.tenant_id == tenant_id, Commune.insee_code == insee_code)
    )
    if exists:
        raise AlreadyExists(f"commune {insee_code} already exists in this tenant")
    commune = Commune(
        tenant_id=tenant_id,
        insee_code=insee_code,
        name=name.strip(),
        boundary=boundary,
        population=population,
    )
    session.add(commune)
    session.flush()
    return commune


def list_communes(session: Session, tenant_id: int) -> list[Commune]:
    return list(
        session.scalars(
            select(Commune).where(Commune.tenant_id == tenant_id).order_by(Commune.name)
        )
    )


def get_commune(session: Session, tenant_id: int, insee_code: str) -> Commune:
    commune = session.scalar(
        select(Commune).where(Commune.tenant_id == tenant_id, Commune.insee_code == insee_code)
    )
    if commune is None:
        raise NotFound(f"no commune {insee_code}")
    return commune


# --- users ---------------------------------------------------------------------------


def create_user(session: Session, *, email: str, full_name: str, password: str) -> User:
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email):
        raise invalid("email", "not an e-mail address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.email == email)):
        raise AlreadyExists(f"a user with e-mail {email} exists")
    user = User(
        email=email, full_name=full_name.strip() or email, password_hash=hash_password(password)
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def members_of(session: Session, tenant_id: int) -> list[tuple[User, Role]]:
    rows = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id)
        .order_by(User.email)
    )
    return [(user, role) for user, role in rows]


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def set_role(session: Session, *, user_id: int, tenant_id: int, role: Role) -> Membership:
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.tenant_id == tenant_id)
    )
    if membership is None:
        membership = Membership(user_id=user_id, tenant_id=tenant_id, role=role)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def memberships_of(session: Session, user_id: int) -> list[tuple[Membership, Tenant]]:
    rows = session.execute(
        select(Membership, Tenant)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == user_id)
        .order_by(Tenant.name)
    )
    return [(membership, tenant) for membership, tenant in rows]


def role_in(session: Session, user_id: int, tenant_id: int) -> Role | None:
    return session.scalar(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.tenant_id == tenant_id
        )
    )


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = find_user_by_email(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    return user


# --- browser sessions ----------------------------------------------------------------


def open_session(session: Session, *, user_id: int, tenant_id: int, max_age_seconds: int) -> str:
    """Store a new signed-in session and return the raw key for the cookie."""
    key = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            key_hash=digest(key),
            user_id=user_id,
            tenant_id=tenant_id,
            expires_at=utcnow() + timedelta(seconds=max_age_seconds),
        )
    )
    session.flush()
    return key


def resolve_session(session: Session, key: str) -> Principal | None:
    key_hash = digest(key)
    row = session.scalar(select(UserSession).where(UserSession.key_hash == key_hash))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    role = role_in(session, row.user_id, row.tenant_id)
    if user is None or not user.is_active or role is None:
        return None
    return Principal(
        tenant_id=row.tenant_id, role=role, user_id=row.user_id, session_key_hash=key_hash
    )


def close_session_by_hash(session: Session, key_hash: str) -> None:
    session.execute(delete(UserSession).where(UserSession.key_hash == key_hash))


def purge_expired_sessions(session: Session) -> int:
    result = session.execute(delete(UserSession).where(UserSession.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


# --- API tokens ----------------------------------------------------------------------


def create_api_token(
    session: Session,
    tenant_id: int,
    *,
    name: str,
    role: Role,
    created_by: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the raw secret is returned once and never stored."""
    if not name.strip():
        raise invalid("name", "must not be empty")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        public_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        name=name.strip(),
        role=role,
        token_hash=digest(raw),
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(token)
    try:
        session.flush()
    except IntegrityError as error:  # a hash collision of 256 random bits: not in practice
        raise AlreadyExists("token collision, try again") from error
    return token, raw


def resolve_api_token(session: Session, raw: str) -> Principal | None:
    """The principal of a valid API token (not revoked, not expired), or None."""
    sender = api_token_sender(session, raw)
    return sender.principal if sender is not None else None


@dataclass(frozen=True)
class TokenSender:
    """An API token's principal and its tenant's creation time (the tenant's fingerprint:
    a tenant recreated under the same id has another)."""

    principal: Principal
    tenant_created_at: datetime


# Built once: the statement is the same for every request, and going through the
# session's connection skips the ORM's handling of the result.
_TOKEN_SENDER = (
    select(
        ApiToken.id,
        ApiToken.tenant_id,
        ApiToken.role,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        Tenant.created_at,
    )
    .join(Tenant, Tenant.id == ApiToken.tenant_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def api_token_sender(session: Session, raw: str) -> TokenSender | None:
    """A valid API token's principal and its tenant's creation time, from one Core SELECT
    of the needed columns (no ORM object to build and track: the ingest hot path uses it
    too); records the last use at most once a minute."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    found = session.connection().execute(_TOKEN_SENDER, {"token_hash": digest(raw)})
    row = found.one_or_none()
    if row is None:
        return None
    token_id, tenant_id, role, expires_at, last_used_at, tenant_created_at = row
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        return None
    # Written at most once a minute so that reads do not all become writes.
    if last_used_at is None or now - last_used_at > timedelta(minutes=1):
        session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now),
            execution_options={"synchronize_session": False},
        )
    principal = Principal(tenant_id=tenant_id, role=role, token_id=token_id)
    return TokenSender(principal, tenant_created_at)


def list_api_tokens(session: Session, tenant_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.tenant_id == tenant_id).order_by(ApiToken.created_at)
        )
    )


def get_api_token(session: Session, tenant_id: int, public_id: str) -> ApiToken:
    token = session.scalar(
        select(ApiToken).where(ApiToken.tenant_id == tenant_id, ApiToken.public_id == public_id)
    )
    if token is None:
        raise NotFound(f"no API token {public_id}")
    return token


def revoke_api_token(session: Session, tenant_id: int, public_id: str) -> ApiToken:
    token = get_api_token(session, tenant_id, public_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
