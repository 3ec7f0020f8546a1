"""FHIR answers: OperationOutcome for what was refused (each issue naming the element
by a FHIRPath expression), and batch-response / transaction-response Bundles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IssueCode = Literal[
    "invalid",
    "structure",
    "required",
    "value",
    "not-supported",
    "business-rule",
    "not-found",
    "duplicate",
    "processing",
    "informational",
    "forbidden",
    "too-costly",
    "throttled",
    "transient",
    "exception",
]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem (or, with severity information, one note) about an element."""

    expression: str
    reason: str
    code: IssueCode = "invalid"
    severity: Literal["error", "warning", "information"] = "error"

    def in_entry(self, index: int) -> Issue:
        """The same issue with its expression inside a Bundle's entry: `ChargeItem.quantity`
        of entry 2 is `Bundle.entry[2].resource.quantity`."""
        head, _, rest = self.expression.partition(".")
        inner = rest if head[:1].isupper() else self.expression
        where = f"Bundle.entry[{index}].resource" + (f".{inner}" if inner else "")
        return Issue(where, self.reason, self.code, self.severity)

    def as_fhir(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.reason,
            "expression": [self.expression],
        }


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.as_fhir() for issue in issues]}


# the issue type of a refusal by its HTTP status
_CODE_BY_STATUS: dict[int, IssueCode] = {
    400: "structure",
    401: "forbidden",
    403: "forbidden",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def outcome_of(message: str, *, status: int) -> dict[str, Any]:
    """An OperationOutcome of one error that concerns no element (forbidden, too large,
    unavailable)."""
    issue = {"severity": "error", "code": _CODE_BY_STATUS.get(status, "exception")}
    return {"resourceType": "OperationOutcome", "issue": [{**issue, "diagnostics": message}]}


@dataclass(frozen=True, slots=True)
class EntryAnswer:
    """What became of one resource: its HTTP status and what to say about it."""

    status: int
    location: str | None
    issues: list[Issue]

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, '')}".rstrip()

    def as_fhir(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": self.status_line}
        if self.location:
            response["location"] = self.location
        if self.issues:
            response["outcome"] = operation_outcome(self.issues)
        return {"response": response}


_REASONS = {200: "OK", 201: "Created", 403: "Forbidden", 422: "Unprocessable Entity"}


def response_bundle(
    kind: Literal["batch", "transaction"], answers: list[EntryAnswer]
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "entry": [answer.as_fhir() for answer in answers],
    }
