"""HTTP routes of the registry domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from territoire.geo import parse_bbox
from territoire.http import DbSession, Reader, RegistryEditor
from territoire.registry import service
from territoire.registry.models import Entity
from territoire.registry.schemas import (
    EntityIn,
    EntityOut,
    EntityPageOut,
    EntityPatch,
    EntityTypeOut,
)
from territoire.registry.types import ENTITY_TYPES, Domain
from territoire.tenancy import service as tenancy

router = APIRouter(prefix="/api/v1", tags=["registry"])


def entity_out(entity: Entity, commune_codes: dict[int, str]) -> EntityOut:
    return EntityOut(
        id=entity.urn,
        type=entity.type,
        name=entity.name,
        properties=entity.properties,
        relationships=entity.relationships,
        location=entity.location,
        commune=commune_codes.get(entity.commune_id) if entity.commune_id else None,
        createdAt=entity.created_at,
        modifiedAt=entity.modified_at,
    )


@router.get("/entity-types", response_model=list[EntityTypeOut])
def entity_types(session: DbSession, principal: Reader) -> list[EntityTypeOut]:
    counts = service.count_by_type(session, principal.tenant_id)
    return [
        EntityTypeOut(type=name, domain=domain.value, count=counts.get(name, 0))
        for name, domain in sorted(ENTITY_TYPES.items())
    ]


@router.get("/entities", response_model=EntityPageOut)
def list_entities(
    session: DbSession,
    principal: Reader,
    type: Annotated[str | None, Query(description="One type or several, comma-separated")] = None,
    domain: Domain | None = None,
    commune: Annotated[str | None, Query(description="INSEE code")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in name or id")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EntityPageOut:
    where = service.EntityFilter(
        types=[t for t in (type or "").split(",") if t],
        domain=domain,
        commune_id=tenancy.get_commune(session, principal.tenant_id, commune).id
        if commune
        else None,
        bbox=parse_bbox(bbox) if bbox else None,
        text=q or None,
    )
    page = service.list_entities(session, principal.tenant_id, where, limit=limit, offset=offset)
    codes = service.commune_code_by_id(session, principal.tenant_id)
    following = offset + limit
    return EntityPageOut(
        items=[entity_out(e, codes) for e in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
    )


@router.post("/entities", response_model=EntityOut, status_code=201)
def create_entity(body: EntityIn, session: DbSession, principal: RegistryEditor) -> EntityOut:
    draft = service.EntityDraft(**body.model_dump())
    entity = service.create_entity(session, principal.tenant_id, draft)
    return entity_out(entity, service.commune_code_by_id(session, principal.tenant_id))


@router.get("/entities/{entity_id}", response_model=EntityOut)
def get_entity(entity_id: str, session: DbSession, principal: Reader) -> EntityOut:
    entity = service.get_entity(session, principal.tenant_id, entity_id)
    return entity_out(entity, service.commune_code_by_id(session, principal.tenant_id))


@router.patch("/entities/{entity_id}", response_model=EntityOut)
def update_entity(
    entity_id: str, body: EntityPatch, session: DbSession, principal: RegistryEditor
) -> EntityOut:
    changes = body.model_dump(exclude_unset=True)
    entity = service.update_entity(session, principal.tenant_id, entity_id, changes)
    return entity_out(entity, service.commune_code_by_id(session, principal.tenant_id))


@router.delete("/entities/{entity_id}", status_code=204)
def delete_entity(entity_id: str, session: DbSession, principal: RegistryEditor) -> Response:
    service.delete_entity(session, principal.tenant_id, entity_id)
    return Response(status_code=204)
