"""What POST /v1/events answers: one result per submitted event."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from services.validation import FieldError


class ItemResult(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldError] = []
    # accepted (or duplicate) but worth a look, e.g. dated long before it was received
    warnings: list[FieldError] = []


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResult]
