"""Objects of the requests domain for tests/test_tenant_isolation.py: one factory per
path parameter name, and request bodies that pass validation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from territoire.requests import catalogue, service
from territoire.requests.models import Follower, UpdateSource
from territoire.tenancy.models import Tenant
from tests.conftest import World

from .helpers import jpeg

Factory = Callable[[World, Tenant], str]
# Path parameters that name the tenant itself (public pages: /c/{tenant_slug}/…).
ACTING_TENANT_PARAMETERS = {"tenant_slug"}


def _category(world: World, tenant: Tenant) -> str:
    code = f"iso-{tenant.slug}"  # different in each tenant: A's code is unknown in B
    with world.database.session() as session:
        if catalogue.find_category(session, tenant.id, code) is None:
            catalogue.create_category(
                session, tenant.id, catalogue.CategoryDraft(code=code, name="Catégorie")
            )
    return code


def _request(world: World, tenant: Tenant, **extra: Any) -> Any:
    code = _category(world, tenant)
    settings = world.app.state.settings  # type: ignore[attr-defined]
    with world.database.session() as session:
        created = service.create_request(
            session,
            tenant.id,
            service.RequestDraft(category_code=code, address="quelque part", **extra),
            actor=service.Actor(UpdateSource.CITIZEN),
            photo_limits=service.PhotoLimits(settings.uploads_dir),
        )
        photos = service.photos_of(session, created, public_only=False)
        followers = session.scalars(select(Follower).where(Follower.request_id == created.id)).all()
        return created, photos, followers


def _code(world: World, tenant: Tenant) -> str:
    return str(_request(world, tenant)[0].code)


def _token(world: World, tenant: Tenant) -> str:
    return str(_request(world, tenant)[0].public_id)


def _photo(world: World, tenant: Tenant) -> str:
    return str(_request(world, tenant, photos=[jpeg()])[1][0].public_id)


def _follower(world: World, tenant: Tenant) -> str:
    return str(_request(world, tenant, email="suivi@example.org")[2][0].token)


def _template(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        template = catalogue.create_template(
            session, tenant.id, title=f"Modèle {uuid.uuid4()}", body="Merci", status=None
        )
        return template.public_id


def _key(world: World, tenant: Tenant) -> str:
    with world.database.session() as session:
        key, _raw = catalogue.create_open311_key(session, tenant.id, name="app")
        return key.public_id


REQUEST_FACTORIES: dict[str, Factory] = {
    "tenant_slug": lambda _world, tenant: tenant.slug,
    "request_code": _code,
    "service_request_id": _code,
    "request_token": _token,
    "service_code": _category,
    "category_code": _category,
    "request_photo_id": _photo,
    "follow_token": _follower,
    "answer_template_id": _template,
    "open311_key_id": _key,
}

REQUEST_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/requests/{request_code}/updates"): {"note": "vu"},
    ("POST", "/api/v1/requests/{request_code}/merge"): {"into": "AAAA-AAAA"},
    ("POST", "/api/v1/requests/{request_code}/work-order"): {},
    ("POST", "/api/v1/requests/{request_code}/moderation"): {"hidden": True},
    ("POST", "/api/v1/requests/{request_code}/contact"): {"purpose": "contrôle"},
    ("PUT", "/api/v1/request-categories/{category_code}"): {"code": "changed", "name": "X"},
}
