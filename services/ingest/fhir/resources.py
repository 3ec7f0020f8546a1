"""Reading a FHIR submission: JSON with exact decimals, one resource or a batch or
transaction Bundle of them, each resource checked against the R4B model of its type.

fhir.resources' default models are R5, which drop R4 elements such as ChargeItem.context;
R4 and R4B agree on every element read here, so the R4B models read R4 resources.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.chargeitem import ChargeItem
from fhir.resources.R4B.encounter import Encounter
from pydantic import ValidationError

from services.ingest.fhir.outcome import Issue

Resource: TypeAlias = ChargeItem | Encounter
RESOURCE_MODELS: dict[str, type[ChargeItem] | type[Encounter]] = {
    "ChargeItem": ChargeItem,
    "Encounter": Encounter,
}
BUNDLE_TYPES = ("batch", "transaction")
MAX_ENTRIES = 1000
# far deeper than any real resource (a Bundle's ChargeItem with nested extensions is
# about 10); the models validate recursively, so depth is bounded before they run
MAX_DEPTH = 48


class Unreadable(Exception):
    """The submission as a whole cannot be read; `issue` says where and why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.reason)
        self.issue = issue


@dataclass(frozen=True, slots=True)
class Entry:
    index: int  # position in the Bundle (0 for a single resource)
    raw: Any  # the resource as decoded
    full_url: str | None


@dataclass(frozen=True, slots=True)
class Submission:
    kind: Literal["resource", "batch", "transaction"]
    entries: list[Entry]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode(raw: bytes) -> Any:
    """The body as JSON, every number with a fraction as an exact Decimal (a price of
    0.10 stays 0.10), or Unreadable."""
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant)
    except UnicodeDecodeError:
        reason = "the body is not UTF-8 text"
    except (ValueError, RecursionError) as error:
        reason = f"the body is not valid JSON: {error}"
    raise Unreadable(Issue("$", reason, "structure"))


def encode(document: Any) -> str:
    """JSON text of a decoded document, each Decimal written as the number it was."""
    return orjson.dumps(document, default=_number).decode()


def _number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(type(value).__name__)


def depth(document: Any) -> int:
    """How deeply objects and arrays nest in a decoded document (without recursing)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        pending.extend((child, level + 1) for child in children)
    return deepest


def split(body: Any) -> Submission:
    """One resource, or the entries of a batch or transaction Bundle (or Unreadable)."""
    if depth(body) > MAX_DEPTH:
        raise Unreadable(
            Issue("$", f"nested deeper than {MAX_DEPTH} levels: not a resource", "too-costly")
        )
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise Unreadable(
            Issue(
                "$",
                "the body must be a FHIR resource (a JSON object with resourceType)",
                "structure",
            )
        )
    kind = body["resourceType"]
    if kind in RESOURCE_MODELS:
        return Submission("resource", [Entry(0, body, None)])
    if kind != "Bundle":
        raise Unreadable(
            Issue(
                "resourceType",
                f"{kind} is not taken here: POST a ChargeItem, an Encounter or a batch or"
                " transaction Bundle of them",
                "not-supported",
            )
        )
    bundle_type = body.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise Unreadable(
            Issue(
                "Bundle.type", f"must be batch or transaction, not {bundle_type!r}", "not-supported"
            )
        )
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        raise Unreadable(Issue("Bundle.entry", "a Bundle needs at least one entry", "required"))
    if len(entries) > MAX_ENTRIES:
        raise Unreadable(
            Issue("Bundle.entry", f"a Bundle holds at most {MAX_ENTRIES} entries", "too-costly")
        )
    shell = {**body, "entry": [_without_resource(entry) for entry in entries]}
    try:
        Bundle.model_validate(shell)
    except ValidationError as error:
        raise Unreadable(_issues(error, "Bundle.")[0]) from None
    return Submission(
        "transaction" if bundle_type == "transaction" else "batch",
        [
            Entry(index, entry.get("resource"), _text(entry.get("fullUrl")))
            for index, entry in enumerate(entries)
        ],
    )


def parse(raw: Any) -> Resource | list[Issue]:
    """The resource as its R4B model, or the issues naming each element at fault."""
    if not isinstance(raw, dict):
        return [Issue("Resource", "each entry needs a resource (a JSON object)", "required")]
    kind = raw.get("resourceType")
    model = RESOURCE_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return [
            Issue(
                "resourceType",
                f"{kind!r} is not taken here: only ChargeItem and Encounter",
                "not-supported",
            )
        ]
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        return _issues(error, f"{kind}.")
    except RecursionError:  # MAX_DEPTH keeps this away; a refusal, never a 500
        return [Issue(str(kind), "nested too deeply to read", "too-costly")]


def fhir_path(location: Sequence[int | str]) -> str:
    """pydantic's error location as a FHIRPath: ('code', 'coding', 0, 'system') ->
    'code.coding[0].system'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _issues(error: ValidationError, prefix: str) -> list[Issue]:
    issues = []
    for detail in error.errors(include_url=False):
        path = fhir_path([part for part in detail["loc"] if part != "resource_type"])
        reason = " ".join(str(detail["msg"]).removeprefix("Value error, ").split())
        issues.append(Issue(f"{prefix}{path}".rstrip("."), reason, "structure"))
    return issues


def _without_resource(entry: Any) -> Any:
    return (
        {key: value for key, value in entry.items() if key != "resource"}
        if isinstance(entry, dict)
        else entry
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
