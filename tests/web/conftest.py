"""Helpers for page tests: a browser-like client that signs in through the HTML form."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant
from tests.conftest import Account, World

HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def page_client(app: Any) -> TestClient:
    client = TestClient(app)
    client.headers["Accept"] = HTML
    return client


def form_token(html: str) -> str:
    found = TOKEN_FIELD.search(html)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def sign_in(client: TestClient, account: Account, next_path: str = "/") -> Any:
    """Sign in through /login as a person would; return the POST response (not followed)."""
    form = client.get("/login", params={"next": next_path})
    assert form.status_code == 200
    return client.post(
        "/login",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": form_token(form.text),
            "next": next_path,
        },
        follow_redirects=False,
    )


def signed_in_client(world: World, account: Account) -> TestClient:
    client = page_client(world.app)
    response = sign_in(client, account)
    assert response.status_code == 303, response.text
    return client


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 47.0], [5.1, 47.0], [5.1, 47.1], [5.0, 47.1], [5.0, 47.0]]],
}


def add_commune(world: World, tenant: Tenant, code: str = "39001", name: str = "Bourg") -> None:
    with world.database.session() as session:
        tenancy.create_commune(
            session, tenant.id, insee_code=code, name=name, boundary=SQUARE, population=1234
        )


def add_entities(world: World, tenant: Tenant, drafts: list[registry.EntityDraft]) -> None:
    with world.database.session() as session:
        locator = registry.commune_locator(session, tenant.id)
        rows = [registry.validated_row(draft, tenant.id, locator) for draft in drafts]
        registry.insert_entities(session, rows)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def lights(count: int, prefix: str = "l", lon: float = 5.05) -> list[registry.EntityDraft]:
    return [
        registry.EntityDraft(
            type="Streetlight",
            id=f"urn:ngsi-ld:Streetlight:{prefix}-{index:03d}",
            name=f"Lampe {prefix}-{index:03d}",
            location=point(lon, 47.01 + index * 0.0005),
            properties={"powerConsumption": 1500.5},
        )
        for index in range(count)
    ]
