"""HTTP routes of the tenancy domain (JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from territoire.errors import NotAuthenticated, invalid
from territoire.http import (
    Administrator,
    AppSettings,
    DbSession,
    Reader,
    clear_session_cookie,
    csrf_token_for,
    set_session_cookie,
)
from territoire.tenancy import service
from territoire.tenancy.models import ApiToken, Commune, Tenant
from territoire.tenancy.schemas import (
    CommuneIn,
    CommuneOut,
    LoginIn,
    MemberIn,
    MemberOut,
    MeOut,
    TenantOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
)

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


def tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(slug=tenant.slug, name=tenant.name, siren=tenant.siren, kind=tenant.kind.value)


def commune_out(commune: Commune, *, with_boundary: bool) -> CommuneOut:
    return CommuneOut(
        insee_code=commune.insee_code,
        name=commune.name,
        population=commune.population,
        boundary=commune.boundary if with_boundary else None,
    )


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.public_id,
        name=token.name,
        role=token.role,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def sign_in(session: DbSession, settings: AppSettings, credentials: LoginIn) -> tuple[str, int]:
    """Check credentials and open a session; return the raw key and the tenant id."""
    user = service.authenticate(session, credentials.email, credentials.password)
    if user is None:
        raise NotAuthenticated("wrong e-mail or password")
    memberships = service.memberships_of(session, user.id)
    if credentials.tenant:
        memberships = [(m, t) for m, t in memberships if t.slug == credentials.tenant]
    if not memberships:
        raise NotAuthenticated("this account has no role in that tenant")
    tenant_id = memberships[0][1].id
    key = service.open_session(
        session,
        user_id=user.id,
        tenant_id=tenant_id,
        max_age_seconds=settings.session_max_age_seconds,
    )
    return key, tenant_id


@router.post("/auth/login", response_model=MeOut)
def login(body: LoginIn, response: Response, session: DbSession, settings: AppSettings) -> MeOut:
    key, _tenant_id = sign_in(session, settings, body)
    set_session_cookie(response, settings, key)
    principal = service.resolve_session(session, key)
    assert principal is not None
    return me_out(session, settings, principal)


@router.post("/auth/logout", status_code=204)
def logout(
    response: Response, session: DbSession, settings: AppSettings, principal: Reader
) -> Response:
    if principal.session_key_hash:
        service.close_session_by_hash(session, principal.session_key_hash)
    response.status_code = 204
    clear_session_cookie(response)
    return response


def me_out(session: DbSession, settings: AppSettings, principal: service.Principal) -> MeOut:
    tenant = service.get_tenant(session, principal.tenant_id)
    user = service.get_user(session, principal.user_id) if principal.user_id else None
    return MeOut(
        tenant=tenant_out(tenant),
        role=principal.role,
        user_email=user.email if user else None,
        via="session" if principal.session_key_hash else "token",
        csrf_token=(
            csrf_token_for(settings, principal.session_key_hash)
            if principal.session_key_hash
            else None
        ),
    )


@router.get("/me", response_model=MeOut)
def me(session: DbSession, settings: AppSettings, principal: Reader) -> MeOut:
    return me_out(session, settings, principal)


@router.get("/communes", response_model=list[CommuneOut])
def communes(session: DbSession, principal: Reader, boundaries: bool = False) -> list[CommuneOut]:
    return [
        commune_out(c, with_boundary=boundaries)
        for c in service.list_communes(session, principal.tenant_id)
    ]


@router.get("/communes/{insee_code}", response_model=CommuneOut)
def commune(insee_code: str, session: DbSession, principal: Reader) -> CommuneOut:
    found = service.get_commune(session, principal.tenant_id, insee_code)
    return commune_out(found, with_boundary=True)


@router.post("/communes", response_model=CommuneOut, status_code=201)
def create_commune(body: CommuneIn, session: DbSession, principal: Administrator) -> CommuneOut:
    created = service.create_commune(
        session,
        principal.tenant_id,
        insee_code=body.insee_code,
        name=body.name,
        boundary=body.boundary,
        population=body.population,
    )
    return commune_out(created, with_boundary=True)


@router.get("/tokens", response_model=list[TokenOut])
def tokens(session: DbSession, principal: Administrator) -> list[TokenOut]:
    return [token_out(t) for t in service.list_api_tokens(session, principal.tenant_id)]


@router.post("/tokens", response_model=TokenCreatedOut, status_code=201)
def create_token(body: TokenIn, session: DbSession, principal: Administrator) -> TokenCreatedOut:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise invalid("expires_at", "give a time zone offset, e.g. 2027-01-01T00:00:00+01:00")
    token, raw = service.create_api_token(
        session,
        principal.tenant_id,
        name=body.name,
        role=body.role,
        created_by=principal.user_id,
        expires_at=body.expires_at,
    )
    return TokenCreatedOut(**token_out(token).model_dump(), token=raw)


@router.get("/tokens/{token_id}", response_model=TokenOut)
def token(token_id: str, session: DbSession, principal: Administrator) -> TokenOut:
    return token_out(service.get_api_token(session, principal.tenant_id, token_id))


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, session: DbSession, principal: Administrator) -> TokenOut:
    return token_out(service.revoke_api_token(session, principal.tenant_id, token_id))


@router.get("/members", response_model=list[MemberOut])
def members(session: DbSession, principal: Administrator) -> list[MemberOut]:
    return [
        MemberOut(email=user.email, full_name=user.full_name, role=role)
        for user, role in service.members_of(session, principal.tenant_id)
    ]


@router.put("/members", response_model=MemberOut)
def put_member(body: MemberIn, session: DbSession, principal: Administrator) -> MemberOut:
    """Give a role in this tenant to an existing user, or create the user with a password."""
    user = service.find_user_by_email(session, body.email)
    if user is None:
        if not body.password:
            raise invalid("password", "required to create a new user")
        user = service.create_user(
            session, email=body.email, full_name=body.full_name, password=body.password
        )
    service.set_role(session, user_id=user.id, tenant_id=principal.tenant_id, role=body.role)
    return MemberOut(email=user.email, full_name=user.full_name, role=body.role)
