"""Validation errors as the wire shows them: one `field: reason` per problem.

Every refusal names the field: the ingest results, the API's 422 answers and the
worker's dead letters all format pydantic's errors here, the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from services.casecost.events import EVENT_TYPES

# discriminated unions prefix an error's location with the tag: "charge.amount"
_EVENT_TYPES = frozenset(EVENT_TYPES)
_UNION_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


class FieldError(BaseModel):
    field: str
    reason: str


def field_errors(
    details: ValidationError | Iterable[Mapping[str, Any]],
) -> list[FieldError]:
    """A pydantic ValidationError (or its `errors()` details) as fields and reasons.

    The location drops the request part ("body") and an event type's union tag; a
    missing or unknown event type is reported on `type`.
    """
    if isinstance(details, ValidationError):
        details = details.errors(include_url=False)
    found = []
    for detail in details:
        location = [str(part) for part in detail["loc"] if part != "body"]
        if location and location[0] in _EVENT_TYPES:
            location = location[1:]
        if detail["type"] in _UNION_TAG_ERRORS:
            location = [*location, "type"]
        reason = str(detail["msg"]).removeprefix("Value error, ")
        found.append(FieldError(field=".".join(location) or "body", reason=reason))
    return found


def summary(errors: Iterable[FieldError]) -> str:
    """`field: reason; field: reason`, as dead letters keep it."""
    return "; ".join(f"{error.field}: {error.reason}" for error in errors)
