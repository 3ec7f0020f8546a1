"""The rule registry on the wire: rules with their versions and switches, reloads, dry runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.casecost.events import Code, Identifier, Label


class SwitchOut(BaseModel):
    """A rule switched off (`enabled` false) or on for a hospital, or for one department
    of it (`department` null: the whole hospital); a department's own switch wins."""

    hospital_id: str
    department: str | None
    enabled: bool
    changed_by: str
    changed_at: datetime
    note: str | None


class SwitchChangeOut(BaseModel):
    """One change of a switch (`enabled` null: the switch was cleared)."""

    hospital_id: str
    department: str | None
    enabled: bool | None
    changed_by: str
    changed_at: datetime
    note: str | None


class RuleVersionOut(BaseModel):
    version: int
    # where the version came from: `file:<name>` (a rule file) or `api`
    source: str
    changed_by: str
    changed_at: datetime
    note: str | None
    rule: dict[str, Any]


class RuleOut(BaseModel):
    """A rule's newest version: `in_force` false once no rule file holds a rule that
    came from one (its history stays)."""

    rule_id: str
    version: int
    kind: str
    severity: str
    enabled: bool
    in_force: bool
    source: str
    changed_by: str
    changed_at: datetime
    note: str | None
    rule: dict[str, Any]
    switches: list[SwitchOut]


class RuleList(BaseModel):
    items: list[RuleOut]
    # moves with every change of the registry (workers reload the rules when it does)
    generation: int


class RuleDetail(RuleOut):
    versions: list[RuleVersionOut]  # newest first
    switch_history: list[SwitchChangeOut]  # newest first


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    hospital_id: Identifier
    department: Code | None = None
    enabled: bool
    note: Label | None = None


class RuleChangeOut(BaseModel):
    rule_id: str
    # added | updated | unchanged | restored | kept | retired
    action: str
    version: int
    file: str | None
    file_version: int | None
    message: str


class ReloadOut(BaseModel):
    changed: bool
    directory: str
    changes: list[RuleChangeOut]
    generation: int


class DryRunFinding(BaseModel):
    hospital_id: str
    case_id: str
    department: str | None
    level: str
    period: str
    event_id: str
    text_zh: str
    text_en: str
    detail: dict[str, Any]


class DryRunOut(BaseModel):
    rule_id: str
    kind: str
    # a case rule: open cases replayed, the most a dry run replays, whether there were more
    cases_checked: int
    limit: int
    truncated: bool
    # a department rule: the month judged (the current one) and the departments with figures
    period: str | None = None
    departments_checked: int = 0
    findings: list[DryRunFinding]


RULE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rule"],
    "additionalProperties": False,
    "properties": {
        "rule": {
            "type": "object",
            "description": "a rule as in a rule file (schemas/rules.v1.json); `id` may be "
            "left out and `version` is set by the server",
        },
        "note": {"type": "string", "maxLength": 200},
    },
}
DRY_RUN_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rule"],
    "additionalProperties": False,
    "properties": {
        "rule": {
            "type": "object",
            "description": "a rule as in a rule file; `id` and `version` may be left out",
        },
        "hospital_id": {"type": "string", "description": "only this hospital's open cases"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200},
    },
}
