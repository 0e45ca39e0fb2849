"""Sign-in, sessions, CSRF and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from territoire.db.base import utcnow
from territoire.http import SESSION_COOKIE
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import ApiToken, Role, UserSession
from territoire.tenancy.passwords import hash_password, verify_password

from .conftest import PASSWORD, World


def test_password_hash_is_argon2_and_verifies() -> None:
    hashed = hash_password("un-mot-de-passe-long")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "un-mot-de-passe-long")
    assert not verify_password(hashed, "un-autre-mot-de-passe")
    assert not verify_password(None, "un-mot-de-passe-long")


def test_login_sets_a_signed_httponly_samesite_cookie(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = TestClient(world.app)  # type: ignore[arg-type]
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    cookie_header = response.headers["set-cookie"]
    assert cookie_header.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie_header
    assert "SameSite=lax" in cookie_header
    assert response.json()["role"] == "operator"
    assert response.json()["tenant"]["slug"] == "ville-a"


def test_wrong_password_is_401_without_saying_which_part_was_wrong(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = TestClient(world.app)  # type: ignore[arg-type]
    wrong = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "nope-nope-nope"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "who@example.test", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


def test_tampered_cookie_is_refused(world: World) -> None:
    tenant = world.tenant("ville-a")
    signed_in = world.browser(world.account(tenant, Role.VIEWER))
    assert signed_in.client.get("/api/v1/me").status_code == 200
    value = signed_in.client.cookies[SESSION_COOKIE]
    signed_in.client.cookies.set(
        SESSION_COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    )
    assert signed_in.client.get("/api/v1/me").status_code == 401


def test_expired_session_is_refused(world: World) -> None:
    tenant = world.tenant("ville-a")
    signed_in = world.browser(world.account(tenant, Role.VIEWER))
    with world.database.session() as session:
        for row in session.scalars(select(UserSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    response = signed_in.client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_logout_ends_the_session_server_side(world: World) -> None:
    tenant = world.tenant("ville-a")
    signed_in = world.browser(world.account(tenant, Role.VIEWER))
    stolen_cookie = signed_in.client.cookies[SESSION_COOKIE]
    assert signed_in.client.post("/api/v1/auth/logout").status_code == 204
    replay = TestClient(world.app)  # type: ignore[arg-type]
    replay.cookies.set(SESSION_COOKIE, stolen_cookie)
    assert replay.get("/api/v1/me").status_code == 401


def test_state_change_with_a_cookie_needs_the_csrf_token(world: World) -> None:
    tenant = world.tenant("ville-a")
    signed_in = world.browser(world.account(tenant, Role.OPERATOR))
    body = {"type": "Streetlight", "name": "Lampadaire"}
    token = signed_in.client.headers.pop("X-CSRF-Token")
    refused = signed_in.client.post("/api/v1/entities", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_rejected"
    forged = signed_in.client.post(
        "/api/v1/entities", json=body, headers={"X-CSRF-Token": "0" * 64}
    )
    assert forged.status_code == 403
    accepted = signed_in.client.post("/api/v1/entities", json=body, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 201


def test_api_tokens_are_stored_hashed_scoped_and_revocable(world: World) -> None:
    tenant = world.tenant("ville-a")
    admin = world.api(tenant, Role.ADMIN)
    created = admin.post("/api/v1/tokens", json={"name": "capteurs", "role": "viewer"})
    assert created.status_code == 201
    raw = created.json()["token"]
    with world.database.session() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.public_id == created.json()["id"]))
        assert stored is not None
        assert raw not in (stored.token_hash, stored.public_id)
        assert stored.token_hash == tenancy.digest(raw)
    viewer = TestClient(world.app)  # type: ignore[arg-type]
    viewer.headers["Authorization"] = f"Bearer {raw}"
    assert viewer.get("/api/v1/entities").status_code == 200
    # The token's role is viewer: it may not write.
    assert viewer.post("/api/v1/entities", json={"type": "Streetlight"}).status_code == 403
    assert admin.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 200
    assert viewer.get("/api/v1/entities").status_code == 401


def test_expired_token_and_malformed_authorization_are_401(world: World) -> None:
    tenant = world.tenant("ville-a")
    with world.database.session() as session:
        _token, raw = tenancy.create_api_token(
            session,
            tenant.id,
            name="old",
            role=Role.ADMIN,
            expires_at=utcnow() - timedelta(minutes=1),
        )
    client = TestClient(world.app)  # type: ignore[arg-type]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401
