"""Signing in and out through the HTML pages: CSRF, errors in the page, safe redirects."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from territoire.http import PRE_SESSION_COOKIE, SESSION_COOKIE
from territoire.tenancy.models import Role, UserSession
from territoire.web.templating import local_path
from tests.conftest import World

from .conftest import form_token, page_client, sign_in, signed_in_client


def session_rows(world: World) -> int:
    with world.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(UserSession)) or 0)


def test_login_form_is_french_with_a_token_bound_to_a_pre_session_cookie(world: World) -> None:
    client = page_client(world.app)
    response = client.get("/login")
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert "Se connecter" in response.text
    assert 'for="email"' in response.text and 'for="password"' in response.text
    assert len(client.cookies[PRE_SESSION_COOKIE]) >= 32
    assert form_token(response.text)
    # The same pre-session keeps the same token; a new browser gets another one.
    assert form_token(client.get("/login").text) == form_token(response.text)
    assert form_token(page_client(world.app).get("/login").text) != form_token(response.text)


def test_sign_in_opens_a_session_and_goes_to_the_asked_page(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = page_client(world.app)
    response = sign_in(client, account, next_path="/entities?type=Streetlight")
    assert response.status_code == 303
    assert response.headers["location"] == "/entities?type=Streetlight"
    assert SESSION_COOKIE in response.headers["set-cookie"]
    assert session_rows(world) == 1
    home = client.get("/")
    assert home.status_code == 200
    assert "Collectivité ville-a" in home.text


@pytest.mark.parametrize("token", ["", "forged-token", "0" * 64])
def test_login_without_the_right_token_is_refused_in_the_page(world: World, token: str) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = page_client(world.app)
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": account.email, "password": account.password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Ce formulaire a expiré" in response.text
    assert SESSION_COOKIE not in client.cookies
    assert session_rows(world) == 0


def test_a_token_from_another_pre_session_is_refused(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    attacker = page_client(world.app)
    stolen = form_token(attacker.get("/login").text)
    victim = page_client(world.app)
    victim.get("/login")
    response = victim.post(
        "/login",
        data={"email": account.email, "password": account.password, "csrf_token": stolen},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert session_rows(world) == 0


def test_login_without_pre_session_cookie_is_refused_and_a_retry_works(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = page_client(world.app)
    refused = client.post(
        "/login",
        data={"email": account.email, "password": account.password, "csrf_token": "x" * 64},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    # The refusal page carries a fresh form: submitting it signs in.
    retry = client.post(
        "/login",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": form_token(refused.text),
        },
        follow_redirects=False,
    )
    assert retry.status_code == 303
    assert session_rows(world) == 1


def test_wrong_password_shows_an_error_in_the_page(world: World) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.OPERATOR)
    client = page_client(world.app)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"email": account.email, "password": "not-the-password", "csrf_token": token},
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in response.text
    assert "Adresse électronique ou mot de passe incorrect." in response.text
    assert f'value="{account.email}"' in response.text  # the e-mail is kept, not the password
    assert session_rows(world) == 0


def test_empty_fields_are_reported_in_the_page(world: World) -> None:
    client = page_client(world.app)
    token = form_token(client.get("/login").text)
    response = client.post("/login", data={"email": " ", "password": "", "csrf_token": token})
    assert response.status_code == 422
    assert "Saisissez votre adresse électronique et votre mot de passe." in response.text


def test_oversized_field_gets_an_html_error_not_json_nor_500(world: World) -> None:
    client = page_client(world.app)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"email": "a" * 5000, "password": "x", "csrf_token": token}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ok\r\nSet-Cookie: x=y",
        "",
    ],
)
def test_next_never_leaves_the_site(world: World, target: str) -> None:
    tenant = world.tenant("ville-a")
    account = world.account(tenant, Role.VIEWER)
    client = page_client(world.app)
    response = sign_in(client, account, next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_local_paths_are_kept() -> None:
    assert local_path("/entities?type=Streetlight&page=2") == "/entities?type=Streetlight&page=2"
    assert local_path("/map") == "/map"
    assert local_path(None) == "/"
    assert local_path("//x") == "/"


def test_signed_in_person_visiting_login_goes_on(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.VIEWER))
    response = client.get("/login", params={"next": "/map"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/map"


def test_pages_redirect_anonymous_people_to_login_with_the_full_path(world: World) -> None:
    client = page_client(world.app)
    response = client.get("/entities?type=Streetlight&page=2", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/entities?type=Streetlight&page=2"]


def test_htmx_request_with_an_ended_session_redirects_the_whole_page(world: World) -> None:
    client = page_client(world.app)
    response = client.get(
        "/entities",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/entities?q=lamp"},
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/entities%3Fq%3Dlamp"


def test_logout_needs_the_csrf_token(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.OPERATOR))
    refused = client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert session_rows(world) == 1
    assert client.get("/", follow_redirects=False).status_code == 200


def test_logout_ends_the_session(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = signed_in_client(world, world.account(tenant, Role.OPERATOR))
    token = form_token(client.get("/").text)
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert session_rows(world) == 0
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_person_with_two_collectivities_chooses_one(world: World) -> None:
    first = world.tenant("ville-a")
    second = world.tenant("ville-b")
    world.account(first, Role.VIEWER, email="deux@example.test")
    account = world.account(second, Role.OPERATOR, email="deux@example.test")
    client = page_client(world.app)
    response = sign_in(client, account, next_path="/map")
    assert response.status_code == 303
    assert response.headers["location"] == "/choose-tenant?next=%2Fmap"
    chooser = client.get(response.headers["location"])
    assert "Collectivité ville-a" in chooser.text and "Collectivité ville-b" in chooser.text
    chosen = client.post(
        "/choose-tenant",
        data={"tenant": "ville-b", "next": "/", "csrf_token": form_token(chooser.text)},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    home = client.get("/")
    assert "<h1>Collectivité ville-b</h1>" in home.text
    assert "Opérateur" in home.text
    assert session_rows(world) == 1  # the first session was closed


def test_choosing_a_collectivity_one_has_no_role_in_is_refused(world: World) -> None:
    mine = world.tenant("ville-a")
    world.account(mine, Role.VIEWER, email="deux@example.test")
    other = world.tenant("ville-b")
    world.account(world.tenant("ville-c"), Role.VIEWER, email="deux@example.test")
    client = signed_in_client(world, world.account(mine, Role.VIEWER, email="deux@example.test"))
    chooser = client.get("/choose-tenant")
    response = client.post(
        "/choose-tenant",
        data={"tenant": other.slug, "csrf_token": form_token(chooser.text)},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "Choisissez l’une de vos collectivités." in response.text
    assert "<h1>Collectivité ville-b</h1>" not in client.get("/").text
