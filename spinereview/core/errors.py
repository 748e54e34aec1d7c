"""Domain errors raised by services and turned into HTTP answers by the API layer."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request that cannot be carried out; the message is meant for a person."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    status_code = 403


class NotFoundError(ApplicationError):
    status_code = 404


class ConflictError(ApplicationError):
    status_code = 409


class PreconditionFailedError(ApplicationError):
    """A save based on a stale version: the client must reload (HTTP 412)."""

    status_code = 412
