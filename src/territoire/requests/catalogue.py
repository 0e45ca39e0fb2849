"""What a tenant offers and how it routes: categories (Open311 services) with their extra
questions, routing rules, answer templates, Open311 client keys and settings.

Service functions: they take a Session and plain data and never import FastAPI.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, NotFound, invalid
from territoire.requests import handover
from territoire.requests.models import (
    AnswerTemplate,
    Category,
    Open311Key,
    RoutingRule,
    Status,
    TenantRequestSettings,
)
from territoire.requests.text import clean_text

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ATTRIBUTE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LIST_TYPES = ("singlevaluelist", "multivaluelist")
DEFAULT_RETENTION_DAYS = 365
KEY_PREFIX = "o311_"


# --- categories ----------------------------------------------------------------------


@dataclass
class CategoryDraft:
    code: str
    name: str
    description: str = ""
    group: str = ""
    keywords: str = ""
    notice: str = ""
    service_notice: str = ""
    attributes: list[dict[str, Any]] = field(default_factory=list)
    duplicate_radius_m: int = 50
    active: bool = True


def _check_attribute(raw: Any, index: int, seen: set[str]) -> dict[str, Any]:
    where = f"attributes[{index}]"
    if not isinstance(raw, dict):
        raise invalid(where, "must be an object")
    code = raw.get("code")
    if not isinstance(code, str) or not ATTRIBUTE_CODE.match(code):
        raise invalid(f"{where}.code", "letters, digits, _ and -, at most 64")
    if code in seen:
        raise invalid(f"{where}.code", f"duplicate attribute code {code!r}")
    seen.add(code)
    datatype = raw.get("datatype", "string")
    if datatype not in DATATYPES:
        raise invalid(f"{where}.datatype", f"one of {', '.join(DATATYPES)}")
    values = raw.get("values") or []
    if datatype in LIST_TYPES:
        if not isinstance(values, list) or not values:
            raise invalid(f"{where}.values", "a list type needs values [{key, name}]")
        for value in values:
            if not isinstance(value, dict) or not str(value.get("key", "")).strip():
                raise invalid(f"{where}.values", "each value is {key, name}")
    description = raw.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise invalid(f"{where}.description", "the question asked must not be empty")
    return {
        "code": code,
        "datatype": datatype,
        "description": clean_text(description, f"{where}.description", max_length=500),
        "datatype_description": str(raw.get("datatype_description") or "")[:200],
        "required": bool(raw.get("required", False)),
        "variable": bool(raw.get("variable", True)),
        "order": int(raw.get("order") or index + 1),
        "values": [
            {"key": str(v["key"]).strip(), "name": str(v.get("name") or v["key"])} for v in values
        ]
        if datatype in LIST_TYPES
        else [],
    }


def check_attribute_definitions(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise invalid("attributes", "must be a list")
    seen: set[str] = set()
    checked = [_check_attribute(item, index, seen) for index, item in enumerate(raw)]
    return sorted(checked, key=lambda a: a["order"])


def _apply(category: Category, draft: CategoryDraft) -> None:
    if not CODE_PATTERN.match(draft.code):
        raise invalid("code", "letters, digits, '_', '-' and '.', at most 64 characters")
    name = clean_text(draft.name, "name", max_length=200, multiline=False)
    if not name:
        raise invalid("name", "must not be empty")
    if not 0 <= draft.duplicate_radius_m <= 5000:
        raise invalid("duplicate_radius_m", "between 0 and 5000 metres")
    category.code = draft.code
    category.name = name
    category.description = clean_text(draft.description, "description", max_length=2000)
    category.group = clean_text(draft.group, "group", max_length=100, multiline=False)
    category.keywords = clean_text(draft.keywords, "keywords", max_length=500, multiline=False)
    category.notice = clean_text(draft.notice, "notice", max_length=1000)
    category.service_notice = clean_text(draft.service_notice, "service_notice", max_length=1000)
    category.attributes = check_attribute_definitions(draft.attributes)
    category.duplicate_radius_m = draft.duplicate_radius_m
    category.active = draft.active


def create_category(session: Session, tenant_id: int, draft: CategoryDraft) -> Category:
    if find_category(session, tenant_id, draft.code) is not None:
        raise AlreadyExists(f"a category with code {draft.code!r} exists")
    category = Category(tenant_id=tenant_id)
    _apply(category, draft)
    session.add(category)
    session.flush()
    return category


def update_category(session: Session, tenant_id: int, code: str, draft: CategoryDraft) -> Category:
    category = get_category(session, tenant_id, code)
    if draft.code != code and find_category(session, tenant_id, draft.code) is not None:
        raise AlreadyExists(f"a category with code {draft.code!r} exists")
    _apply(category, draft)
    session.flush()
    return category


def find_category(session: Session, tenant_id: int, code: str) -> Category | None:
    return session.scalar(
        select(Category).where(Category.tenant_id == tenant_id, Category.code == code)
    )


def get_category(session: Session, tenant_id: int, code: str) -> Category:
    category = find_category(session, tenant_id, code)
    if category is None:
        raise NotFound(f"no category (service_code) {code!r}")
    return category


def category_by_id(session: Session, tenant_id: int, category_id: int) -> Category:
    category = session.get(Category, category_id)
    if category is None or category.tenant_id != tenant_id:
        raise NotFound(f"no category {category_id}")
    return category


def list_categories(
    session: Session, tenant_id: int, *, active_only: bool = True
) -> list[Category]:
    query = select(Category).where(Category.tenant_id == tenant_id)
    if active_only:
        query = query.where(Category.active.is_(True))
    return list(session.scalars(query.order_by(Category.group, Category.name)))


# --- answers to the extra questions --------------------------------------------------


def _one_value(definition: dict[str, Any], value: str, field_name: str) -> str:
    datatype = definition["datatype"]
    value = value.strip()
    if datatype == "number":
        try:
            float(value)
        except ValueError as error:
            raise invalid(field_name, "must be a number") from error
    elif datatype == "datetime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise invalid(field_name, "must be an ISO 8601 date and time") from error
    elif datatype in LIST_TYPES:
        keys = {v["key"] for v in definition["values"]}
        if value not in keys:
            raise invalid(field_name, f"must be one of {', '.join(sorted(keys))}")
    multiline = datatype == "text"
    return clean_text(value, field_name, max_length=1000, multiline=multiline)


def check_answers(category: Category, answers: dict[str, str | list[str]]) -> dict[str, Any]:
    """Validate attribute[code] answers against the category's questions."""
    definitions = {d["code"]: d for d in category.attributes if d.get("variable", True)}
    unknown = sorted(set(answers) - set(definitions))
    if unknown:
        raise invalid(f"attribute[{unknown[0]}]", "not a question of this category")
    checked: dict[str, Any] = {}
    for code, definition in definitions.items():
        field_name = f"attribute[{code}]"
        given = answers.get(code)
        values = [given] if isinstance(given, str) else list(given or [])
        values = [v for v in values if v.strip()]
        if not values:
            if definition["required"]:
                raise invalid(field_name, "required for this category")
            continue
        if definition["datatype"] != "multivaluelist" and len(values) > 1:
            raise invalid(field_name, "takes a single value")
        cleaned = [_one_value(definition, v, field_name) for v in values]
        checked[code] = cleaned if definition["datatype"] == "multivaluelist" else cleaned[0]
    return checked


# --- routing -------------------------------------------------------------------------


@dataclass
class RoutingDraft:
    category_code: str | None
    commune_id: int | None
    team_id: str | None
    agency: str = ""
    skill: str | None = None


@dataclass(frozen=True)
class Route:
    team_id: str | None
    agency: str
    skill: str | None


def replace_routing(
    session: Session, tenant_id: int, drafts: list[RoutingDraft]
) -> list[RoutingRule]:
    """Replace the tenant's routing table as a whole (the admin screen edits it as one)."""
    seen: set[tuple[int | None, int | None]] = set()
    rules = []
    for index, draft in enumerate(drafts):
        category_id = (
            get_category(session, tenant_id, draft.category_code).id
            if draft.category_code
            else None
        )
        key = (category_id, draft.commune_id)
        if key in seen:
            raise invalid(f"rules[{index}]", "two rules for the same category and commune")
        seen.add(key)
        agency = clean_text(draft.agency, f"rules[{index}].agency", max_length=200, multiline=False)
        if draft.team_id is None and not agency:
            raise invalid(f"rules[{index}]", "give a team or an agency name")
        if draft.team_id is not None:
            handover.check_team(session, tenant_id, draft.team_id, f"rules[{index}].team_id")
        rules.append(
            RoutingRule(
                tenant_id=tenant_id,
                category_id=category_id,
                commune_id=draft.commune_id,
                team_id=draft.team_id,
                agency=agency,
                skill=draft.skill or None,
            )
        )
    session.execute(delete(RoutingRule).where(RoutingRule.tenant_id == tenant_id))
    session.add_all(rules)
    session.flush()
    return rules


def list_routing(session: Session, tenant_id: int) -> list[RoutingRule]:
    return list(
        session.scalars(
            select(RoutingRule).where(RoutingRule.tenant_id == tenant_id).order_by(RoutingRule.id)
        )
    )


def route_for(
    session: Session, tenant_id: int, category_id: int, commune_id: int | None
) -> Route | None:
    """The most specific rule: category+commune, then category, then commune, then any."""
    best: tuple[int, RoutingRule] | None = None
    for rule in list_routing(session, tenant_id):
        if rule.category_id not in (None, category_id):
            continue
        if rule.commune_id is not None and rule.commune_id != commune_id:
            continue
        score = (2 if rule.category_id is not None else 0) + (1 if rule.commune_id else 0)
        if best is None or score > best[0]:
            best = (score, rule)
    if best is None:
        return None
    return Route(team_id=best[1].team_id, agency=best[1].agency, skill=best[1].skill)


# --- answer templates ----------------------------------------------------------------


def create_template(
    session: Session, tenant_id: int, *, title: str, body: str, status: Status | None
) -> AnswerTemplate:
    title = clean_text(title, "title", max_length=200, multiline=False)
    body = clean_text(body, "body", max_length=4000)
    if not title or not body:
        raise invalid("title" if not title else "body", "must not be empty")
    exists = session.scalar(
        select(AnswerTemplate.id).where(
            AnswerTemplate.tenant_id == tenant_id, AnswerTemplate.title == title
        )
    )
    if exists:
        raise AlreadyExists(f"an answer template titled {title!r} exists")
    template = AnswerTemplate(
        tenant_id=tenant_id, public_id=str(uuid.uuid4()), title=title, body=body, status=status
    )
    session.add(template)
    session.flush()
    return template


def list_templates(session: Session, tenant_id: int) -> list[AnswerTemplate]:
    return list(
        session.scalars(
            select(AnswerTemplate)
            .where(AnswerTemplate.tenant_id == tenant_id)
            .order_by(AnswerTemplate.title)
        )
    )


def get_template(session: Session, tenant_id: int, public_id: str) -> AnswerTemplate:
    template = session.scalar(
        select(AnswerTemplate).where(
            AnswerTemplate.tenant_id == tenant_id, AnswerTemplate.public_id == public_id
        )
    )
    if template is None:
        raise NotFound(f"no answer template {public_id}")
    return template


def delete_template(session: Session, tenant_id: int, public_id: str) -> None:
    session.delete(get_template(session, tenant_id, public_id))
    session.flush()


# --- Open311 client keys -------------------------------------------------------------


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_open311_key(
    session: Session, tenant_id: int, *, name: str, trusted: bool = False
) -> tuple[Open311Key, str]:
    """Create a key for an Open311 client; the raw key is returned once, never stored."""
    name = clean_text(name, "name", max_length=200, multiline=False)
    if not name:
        raise invalid("name", "must not be empty")
    raw = KEY_PREFIX + secrets.token_urlsafe(24)
    key = Open311Key(
        tenant_id=tenant_id,
        public_id=str(uuid.uuid4()),
        name=name,
        key_hash=_digest(raw),
        trusted=trusted,
    )
    session.add(key)
    session.flush()
    return key, raw


def resolve_open311_key(session: Session, tenant_id: int, raw: str) -> Open311Key | None:
    key = session.scalar(select(Open311Key).where(Open311Key.key_hash == _digest(raw)))
    if key is None or key.tenant_id != tenant_id or key.revoked_at is not None:
        return None
    return key


def list_open311_keys(session: Session, tenant_id: int) -> list[Open311Key]:
    return list(
        session.scalars(
            select(Open311Key).where(Open311Key.tenant_id == tenant_id).order_by(Open311Key.id)
        )
    )


def revoke_open311_key(session: Session, tenant_id: int, public_id: str) -> Open311Key:
    key = session.scalar(
        select(Open311Key).where(
            Open311Key.tenant_id == tenant_id, Open311Key.public_id == public_id
        )
    )
    if key is None:
        raise NotFound(f"no Open311 key {public_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


# --- per-tenant settings -------------------------------------------------------------


def retention_days(session: Session, tenant_id: int) -> int:
    row = session.get(TenantRequestSettings, tenant_id)
    return row.contact_retention_days if row else DEFAULT_RETENTION_DAYS


def set_retention_days(session: Session, tenant_id: int, days: int) -> TenantRequestSettings:
    if not 1 <= days <= 3650:
        raise invalid("contact_retention_days", "between 1 and 3650 days")
    row = session.get(TenantRequestSettings, tenant_id)
    if row is None:
        row = TenantRequestSettings(tenant_id=tenant_id)
        session.add(row)
    row.contact_retention_days = days
    row.updated_at = utcnow()
    session.flush()
    return row
