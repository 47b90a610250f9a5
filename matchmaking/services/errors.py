"""Domain errors, turned into HTTP answers or form messages by the entry points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """Base of the errors a user can cause and should be told about."""


class ValidationError(DomainError):
    """Bad input: one message per field, in the current locale (lazy strings)."""

    def __init__(self, errors: Mapping[str, Any]) -> None:
        super().__init__(", ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)

    def messages(self) -> dict[str, str]:
        return {field: str(message) for field, message in self.errors.items()}


class NotFound(DomainError):
    """Missing, or not the caller's to see (both answer the same, so ids reveal nothing)."""


class Conflict(DomainError):
    """The request contradicts the current state (e.g. a decision on a closed match)."""
