"""The rules admin page: the tenant's rules with their plain-language description, a
form to add one (kind + parameters as JSON), and each rule's versions, edit and archive.

Forms post here; a refused definition shows the page again with the reasons (422) and
stores nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, Response

from territoire.errors import DomainError, FieldProblem, InvalidInput
from territoire.http import DbSession
from territoire.registry.types import ENTITY_TYPES
from territoire.rules import service
from territoire.rules.definitions import DEFINITIONS, KINDS, parse_definition
from territoire.rules.models import Rule
from territoire.tenancy.permissions import Permission, allows
from territoire.web.i18n import N_
from territoire.web.nav import NavEntry, register_nav
from territoire.web.templating import Page, PageContext, page_for

router = APIRouter(tags=["rules pages"], include_in_schema=False)
OperatorPage = Annotated[PageContext, Depends(page_for(Permission.OPERATE))]
SEVERITIES = ("critical", "major", "minor", "warning")

register_nav(NavEntry("rules", N_("Rules"), "/rules", Permission.READ, order=45))


def _examples() -> dict[str, str]:
    """Each kind's parameters with their defaults (required ones left for the user)."""
    found = {}
    for kind, cls in DEFINITIONS.items():
        fields = {
            name: info.get_default(call_default_factory=True)
            for name, info in cls.model_fields.items()
            if not info.is_required()
        }
        for name, info in cls.model_fields.items():
            if info.is_required():
                fields[name] = None
        found[kind] = orjson.dumps(fields, option=orjson.OPT_INDENT_2).decode()
    return found


def _user(page: PageContext) -> int | None:
    return page.principal.user_id if page.principal is not None else None


def _description(page: PageContext, rule: Any) -> str:
    return str(rule.description_fr if page.language == "fr" else rule.description_en)


def _listing(session: DbSession, page: PageContext, **extra: Any) -> dict[str, Any]:
    rules = service.list_rules(session, page.tenant_id, include_archived=True)
    return {
        "rules": [r for r in rules if r.archived_at is None],
        "archived": [r for r in rules if r.archived_at is not None],
        "describe": lambda rule: _description(page, rule),
        "can_operate": page.principal is not None
        and allows(page.principal.role, Permission.OPERATE),
        "kinds": KINDS,
        "examples": _examples(),
        "severities": SEVERITIES,
        "entity_types": sorted(ENTITY_TYPES),
        "form": {
            "kind": "threshold",
            "severity": "minor",
            "parameters": "",
            "name": "",
            "entity_types": "",
        },
        "error": None,
        "problems": [],
        **extra,
    }


def _parameters(text: str, kind: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text or "{}")
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            "parameters: not valid JSON", [FieldProblem("parameters", f"not valid JSON: {error}")]
        ) from error
    if not isinstance(data, dict):
        raise InvalidInput("parameters: a JSON object", [FieldProblem("parameters", "an object")])
    return {key: value for key, value in {**data, "kind": kind}.items() if value is not None}


def _types(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@router.get("/rules", response_class=HTMLResponse)
def rules_page(page: Page, session: DbSession) -> Response:
    return page.render("rules/rules.html", _listing(session, page))


@router.post("/rules", response_class=HTMLResponse)
def create(
    page: OperatorPage,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
    severity: Annotated[str, Form(max_length=16)] = "minor",
    parameters: Annotated[str, Form(max_length=20_000)] = "",
    entity_types: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    form = {"kind": kind, "severity": severity, "parameters": parameters, "name": name,
            "entity_types": entity_types}  # fmt: skip
    try:
        draft = service.RuleDraft(
            name=name,
            definition=_parameters(parameters, kind),
            severity=severity,
            scope={"entity_types": _types(entity_types)},
        )
        with session.begin_nested():
            rule = service.create_rule(session, page.tenant_id, draft, by_user=_user(page))
    except DomainError as error:
        data = _listing(session, page, form=form, error=error.message, problems=error.problems)
        return page.render("rules/rules.html", data, status_code=error.status_code)
    return page.redirect(f"/rules/{rule.public_id}")


def _detail(session: DbSession, page: PageContext, rule: Rule, **extra: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "description": _description(page, rule),
        "definition": orjson.dumps(rule.parameters, option=orjson.OPT_INDENT_2).decode(),
        "versions": service.versions_of(session, rule),
        "describe_version": lambda v: (
            v.description_fr if page.language == "fr" else v.description_en
        ),
        "can_operate": page.principal is not None
        and allows(page.principal.role, Permission.OPERATE),
        "severities": SEVERITIES,
        "error": None,
        "problems": [],
        **extra,
    }


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(rule_id: str, page: Page, session: DbSession) -> Response:
    rule = service.get_rule(session, page.tenant_id, rule_id)
    return page.render("rules/rule.html", _detail(session, page, rule))


@router.post("/rules/{rule_id}", response_class=HTMLResponse)
def edit(
    rule_id: str,
    page: OperatorPage,
    session: DbSession,
    severity: Annotated[str, Form(max_length=16)] = "",
    parameters: Annotated[str, Form(max_length=20_000)] = "",
    enabled: Annotated[str, Form(max_length=5)] = "",
    version: Annotated[int | None, Form()] = None,
) -> Response:
    rule = service.get_rule(session, page.tenant_id, rule_id)
    try:
        definition = _parameters(parameters, rule.kind)
        parse_definition(definition)
        patch = service.RulePatch(
            definition=definition,
            severity=severity or None,
            enabled=enabled == "on",
            expected_version=version,
        )
        with session.begin_nested():
            service.update_rule(session, page.tenant_id, rule_id, patch, by_user=_user(page))
    except DomainError as error:
        session.expire(rule)
        data = _detail(session, page, rule, error=error.message, problems=error.problems)
        data["definition"] = parameters
        return page.render("rules/rule.html", data, status_code=error.status_code)
    return page.redirect(f"/rules/{rule_id}")


@router.post("/rules/{rule_id}/archive", response_class=HTMLResponse)
def archive(rule_id: str, page: OperatorPage, session: DbSession) -> Response:
    service.archive_rule(session, page.tenant_id, rule_id, by_user=_user(page))
    return page.redirect("/rules")
