"""Errors raised by services; the web layer turns each into a 4xx JSON answer.

Services never import FastAPI: they raise these, and `territoire.app` maps them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class AlreadyExists(DomainError):
    status_code = 409
    code = "already_exists"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


def invalid(field_name: str, reason: str, message: str | None = None) -> InvalidInput:
    """Shortcut for the common case of one bad field."""
    return InvalidInput(message or f"{field_name}: {reason}", [FieldProblem(field_name, reason)])
