"""A user of tenant A gets 404 — not 403, no leak — for every object of tenant B, on
every route that exists. Routes are discovered from the application itself, so a new
route with a path parameter fails this test until its objects are covered here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Route

from territoire.app import domain_routers
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant

from .conftest import World
from .interventions.isolation import OPERATIONS_BODIES, OPERATIONS_FACTORIES
from .requests.isolation import ACTING_TENANT_PARAMETERS, REQUEST_BODIES, REQUEST_FACTORIES
from .rules.isolation import RULES_FACTORIES
from .telemetry.isolation import TELEMETRY_FACTORIES

BOUNDARY = {
    "type": "Polygon",
    "coordinates": [[[5, 47], [5.1, 47], [5.1, 47.1], [5, 47.1], [5, 47]]],
}


@dataclass
class Objects:
    """Public identifiers of one tenant's objects, by path parameter name."""

    values: dict[str, str]


# Each path parameter name maps to a function creating an object in a tenant and
# returning its public identifier. A domain adding routes adds its parameters here.
Factory = Callable[[World, Tenant], str]


def _entity(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        urn = f"urn:ngsi-ld:Streetlight:{uuid.uuid4()}"
        registry.create_entity(session, tenant.id, registry.EntityDraft(type="Streetlight", id=urn))
    return urn


def _commune(world: World, tenant: Tenant) -> str:
    code = "21009" if tenant.slug.endswith("b") else "21008"
    with world.database.session() as session:
        tenancy.create_commune(
            session, tenant.id, insee_code=code, name=f"C {code}", boundary=BOUNDARY
        )
    return code


def _token(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        token, _raw = tenancy.create_api_token(session, tenant.id, name="t", role=Role.VIEWER)
    return token.public_id


FACTORIES: dict[str, Factory] = {
    "entity_id": _entity,
    "insee_code": _commune,
    "token_id": _token,
}

# Request bodies that pass validation, so that the answer is about the object.
BODIES: dict[tuple[str, str], Any] = {}

FACTORIES.update(REQUEST_FACTORIES)
BODIES.update(REQUEST_BODIES)
FACTORIES.update(OPERATIONS_FACTORIES)
FACTORIES.update(TELEMETRY_FACTORIES)
FACTORIES.update(RULES_FACTORIES)
BODIES.update(OPERATIONS_BODIES)

PARAMETER = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _walk(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """Flatten routers, including routers included in routers."""
    flat: list[tuple[str, set[str]]] = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            flat.extend(_walk(nested.routes, prefix + route.include_context.prefix))
        elif isinstance(route, APIRoute | Route):
            flat.append((prefix + route.path, set(route.methods or ())))
    return flat


def routes_with_parameters() -> list[tuple[str, str, list[str]]]:
    found = []
    for router in domain_routers():
        for path, methods in _walk(router.routes, ""):
            names = PARAMETER.findall(path)
            for method in sorted(methods - {"HEAD", "OPTIONS"}):
                # A route naming only the tenant (a public page) shows no other tenant's object.
                if set(names) - ACTING_TENANT_PARAMETERS:
                    found.append((method, path, names))
    return found


def make_objects(world: World, tenant: Tenant, names: set[str]) -> Objects:
    missing = names - FACTORIES.keys()
    assert not missing, f"add a factory to test_tenant_isolation.FACTORIES for {sorted(missing)}"
    return Objects({name: FACTORIES[name](world, tenant) for name in sorted(names)})


def fill(path: str, objects: Objects) -> str:
    return PARAMETER.sub(lambda match: objects.values[match.group(1)], path)


def test_every_route_answers_404_for_another_tenants_objects(world: World) -> None:
    routes = routes_with_parameters()
    assert routes, "the application has routes with path parameters"
    names = {name for _method, _path, route_names in routes for name in route_names}
    tenant_a, tenant_b = world.tenant("ville-a"), world.tenant("ville-b")
    own = make_objects(world, tenant_a, names)
    theirs = make_objects(world, tenant_b, names)
    admin_a = world.api(tenant_a, Role.ADMIN)

    # Parameters naming the tenant take A's value: A's URL must never show B's object.
    acting = {name: own.values[name] for name in ACTING_TENANT_PARAMETERS if name in own.values}
    for method, path, _names in routes:
        url = fill(path, Objects({**theirs.values, **acting}))
        body = BODIES.get((method, path), {})
        response = admin_a.request(method, url, json=body if method != "GET" else None)
        assert response.status_code == 404, (
            f"{method} {url}: {response.status_code} {response.text[:200]}"
        )
        assert tenant_b.name not in response.text

    # Control: the same routes find tenant A's own objects, so 404 above means something.
    for method, path, _names in routes:
        if method == "GET":
            response = admin_a.get(fill(path, own))
            assert response.status_code != 404, f"GET {fill(path, own)} should find A's object"

    # Nothing of B's was changed by A's attempts.
    reader_b = world.api(tenant_b, Role.ADMIN)
    for method, path, _names in routes:
        if method == "GET":
            assert reader_b.get(fill(path, theirs)).status_code == 200, path
    token = reader_b.get(f"/api/v1/tokens/{theirs.values['token_id']}").json()
    assert token["revoked_at"] is None
