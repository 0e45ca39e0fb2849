"""Request and response types of the rules API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from territoire.alarms.models import Severity


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_types: list[str] = Field(
        default_factory=list, description="Smart Data Model types; empty: the kind's default"
    )
    entities: list[str] = Field(default_factory=list, description="Only these URNs")
    commune: str | None = Field(default=None, description="INSEE code of one commune")
    exclude: list[str] = Field(default_factory=list, description="URNs left out")


class RuleIn(BaseModel):
    """A new rule. `definition` holds `kind` and that kind's parameters (GET /rules/kinds)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    key: str | None = Field(
        default=None, max_length=100, description="Stable key carried by its alarms"
    )
    severity: str = "minor"
    enabled: bool = True
    scope: ScopeIn | None = None
    definition: dict[str, Any]


class RulePatchIn(BaseModel):
    """An edit: a new version. `version`, when given, must be the current one."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    severity: str | None = None
    enabled: bool | None = None
    scope: ScopeIn | None = None
    definition: dict[str, Any] | None = None
    version: int | None = None


class DescriptionOut(BaseModel):
    fr: str
    en: str


class RuleOut(BaseModel):
    id: str
    key: str
    name: str
    kind: str
    version: int
    severity: Severity
    enabled: bool
    archived_at: datetime | None
    scope: dict[str, Any]
    definition: dict[str, Any]
    description: DescriptionOut
    last_error: str | None
    last_error_at: datetime | None
    error_count: int
    created_at: datetime
    updated_at: datetime


class RuleVersionOut(BaseModel):
    version: int
    name: str
    severity: Severity
    enabled: bool
    scope: dict[str, Any]
    definition: dict[str, Any]
    description: DescriptionOut
    created_at: datetime
    created_by: int | None


class KindOut(BaseModel):
    kind: str
    timed: bool
    default_entity_types: list[str]
    parameters: dict[str, Any] = Field(description="JSON Schema of the definition")


class DescribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]


class InstalledOut(BaseModel):
    created: list[RuleOut]
