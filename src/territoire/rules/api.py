"""HTTP routes of the rules domain: /api/v1/rules (JSON) and the admin page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query

from territoire.http import DbSession, Reader, requires
from territoire.rules import defaults, kpis, pages, service
from territoire.rules.definitions import DEFINITIONS
from territoire.rules.models import Rule, RuleVersion
from territoire.rules.schemas import (
    DescribeIn,
    DescriptionOut,
    InstalledOut,
    KindOut,
    RuleIn,
    RuleOut,
    RulePatchIn,
    RuleVersionOut,
)
from territoire.tenancy.permissions import Permission
from territoire.tenancy.service import Principal

Operator = Annotated[Principal, Depends(requires(Permission.OPERATE))]

api = APIRouter(prefix="/api/v1/rules", tags=["rules"])


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.public_id,
        key=rule.key,
        name=rule.name,
        kind=rule.kind,
        version=rule.version,
        severity=rule.severity,
        enabled=rule.enabled,
        archived_at=rule.archived_at,
        scope=rule.scope,
        definition=rule.parameters,
        description=DescriptionOut(fr=rule.description_fr, en=rule.description_en),
        last_error=rule.last_error,
        last_error_at=rule.last_error_at,
        error_count=rule.error_count,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def version_out(version: RuleVersion) -> RuleVersionOut:
    return RuleVersionOut(
        version=version.version,
        name=version.name,
        severity=version.severity,
        enabled=version.enabled,
        scope=version.scope,
        definition=version.parameters,
        description=DescriptionOut(fr=version.description_fr, en=version.description_en),
        created_at=version.created_at,
        created_by=version.created_by,
    )


@api.get("", response_model=list[RuleOut])
def list_rules(
    session: DbSession,
    principal: Reader,
    kind: str | None = None,
    include_archived: Annotated[bool, Query()] = False,
) -> list[RuleOut]:
    rules = service.list_rules(
        session, principal.tenant_id, include_archived=include_archived, kind=kind
    )
    return [rule_out(rule) for rule in rules]


@api.post("", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, session: DbSession, principal: Operator) -> RuleOut:
    draft = service.RuleDraft(
        name=body.name,
        key=body.key,
        definition=body.definition,
        severity=body.severity,
        scope=body.scope.model_dump() if body.scope is not None else None,
        enabled=body.enabled,
    )
    return rule_out(
        service.create_rule(session, principal.tenant_id, draft, by_user=principal.user_id)
    )


@api.get("/kinds", response_model=list[KindOut])
def kinds(principal: Reader) -> list[KindOut]:
    return [
        KindOut(
            kind=kind,
            timed=cls.timed,
            default_entity_types=list(cls.default_types),
            parameters=cls.model_json_schema(),
        )
        for kind, cls in DEFINITIONS.items()
    ]


@api.post("/describe", response_model=DescriptionOut)
def describe(body: DescribeIn, principal: Reader) -> DescriptionOut:
    """The French and English descriptions a definition would get (nothing is stored)."""
    return DescriptionOut(**service.describe_definition(body.definition))


@api.post("/defaults", response_model=InstalledOut, status_code=201)
def install_defaults(session: DbSession, principal: Operator) -> InstalledOut:
    """Install the default rule set (rules whose key already exists are left alone)."""
    drafts = defaults.default_rules(session, principal.tenant_id)
    created = service.install_rules(session, principal.tenant_id, drafts, by_user=principal.user_id)
    return InstalledOut(created=[rule_out(rule) for rule in created])


@api.get("/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: str, session: DbSession, principal: Reader) -> RuleOut:
    return rule_out(service.get_rule(session, principal.tenant_id, rule_id))


@api.patch("/{rule_id}", response_model=RuleOut)
def update_rule(
    rule_id: str, body: RulePatchIn, session: DbSession, principal: Operator
) -> RuleOut:
    patch = service.RulePatch(
        name=body.name,
        definition=body.definition,
        severity=body.severity,
        scope=body.scope.model_dump() if body.scope is not None else None,
        enabled=body.enabled,
        expected_version=body.version,
    )
    rule = service.update_rule(
        session, principal.tenant_id, rule_id, patch, by_user=principal.user_id
    )
    return rule_out(rule)


@api.delete("/{rule_id}", response_model=RuleOut)
def archive_rule(rule_id: str, session: DbSession, principal: Operator) -> RuleOut:
    """Archive: the rule stops for good, its history stays."""
    return rule_out(
        service.archive_rule(session, principal.tenant_id, rule_id, by_user=principal.user_id)
    )


@api.get("/{rule_id}/versions", response_model=list[RuleVersionOut])
def rule_versions(rule_id: str, session: DbSession, principal: Reader) -> list[RuleVersionOut]:
    rule = service.get_rule(session, principal.tenant_id, rule_id)
    return [version_out(version) for version in service.versions_of(session, rule)]


# Importing the KPIs registers them with the KPI module (its extension point).
KPI_PROVIDER = kpis.telemetry_kpis


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The embedded default runs the rule timers in the web process (workers run theirs
    with `service.run_timers_forever`)."""
    every = float(app.state.settings.rule_timer_seconds)
    task = None
    if every > 0:
        task = asyncio.create_task(service.run_timers_in_background(app.state.database, every))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


router = APIRouter(lifespan=lifespan)
router.include_router(api)
router.include_router(pages.router)
