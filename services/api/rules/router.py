"""Monitoring rules: the registry's rules, their versions and switches, reload, dry run.

Reading needs rules:read (department heads, the insurance office, admins); changing
needs rules:write (the insurance office and admins). A caller who does not see every
hospital may change only rules limited to hospitals of theirs (`hospitals` listed, each
theirs), and switch rules only for their hospitals. Rule bodies are read with exact
decimals (a JSON 0.15 is Decimal("0.15"), never a binary float), as the rule files are.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam

from services.access.exceptions import NotPermitted
from services.access.principal import Principal
from services.api.deps import NowDep, PriceBookDep, SessionDep, require
from services.api.openapi import ErrorBody
from services.api.rules import dryrun
from services.api.rules.schemas import (
    DRY_RUN_BODY_SCHEMA,
    RULE_BODY_SCHEMA,
    DryRunFinding,
    DryRunOut,
    ReloadOut,
    RuleChangeOut,
    RuleDetail,
    RuleList,
    RuleOut,
    RuleVersionOut,
    SwitchChangeOut,
    SwitchIn,
    SwitchOut,
)
from services.casecost.events import Code, Identifier
from services.casecost.rules import RULE_ID_PATTERN
from services.reference import registry
from services.reference.exceptions import RuleRefused, UnknownRule
from services.reference.rules import DEFAULT_RULES_DIR
from services.settings import CommonSettings
from services.storage.models import RuleSwitchRecord
from services.validation import FieldError

router = APIRouter(tags=["monitoring rules"])
RuleReader = Annotated[Principal, Depends(require("rules:read"))]
RuleWriter = Annotated[Principal, Depends(require("rules:write"))]
RuleIdPath = Annotated[str, PathParam(pattern=RULE_ID_PATTERN)]
DRY_RUN_DEFAULT_LIMIT = 200
DRY_RUN_MAX_LIMIT = 1000
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such rule"}
}


async def _exact_body(request: Request) -> dict[str, Any]:
    """The JSON body with exact decimals; 422 naming `body` when it is not an object."""
    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise RuleRefused([FieldError(field="body", reason="not valid JSON")]) from None
    if not isinstance(body, dict):
        raise RuleRefused([FieldError(field="body", reason="must be a JSON object")])
    return body


ExactBody = Annotated[dict[str, Any], Depends(_exact_body)]


def _visible(caller: Principal) -> frozenset[str] | None:
    return None if caller.all_hospitals else caller.hospitals


def _switch(record: RuleSwitchRecord) -> SwitchOut:
    assert record.enabled is not None  # cleared switches are not listed as switches
    return SwitchOut(
        hospital_id=record.hospital_id,
        department=record.department or None,
        enabled=record.enabled,
        changed_by=record.changed_by,
        changed_at=record.changed_at,
        note=record.note,
    )


def _rule_out(entry: registry.RuleEntry) -> dict[str, Any]:
    record = entry.record
    return {
        "rule_id": entry.head.rule_id,
        "version": record.version,
        "kind": record.kind,
        "severity": record.rule.get("severity", ""),
        "enabled": bool(record.rule.get("enabled", True)),
        "in_force": entry.head.in_force,
        "source": record.source,
        "changed_by": record.changed_by,
        "changed_at": record.changed_at,
        "note": record.note,
        "rule": record.rule,
        "switches": [_switch(switch) for switch in entry.switches],
    }


def _detail(entry: registry.RuleEntry) -> RuleDetail:
    return RuleDetail(
        **_rule_out(entry),
        versions=[
            RuleVersionOut(
                version=version.version,
                source=version.source,
                changed_by=version.changed_by,
                changed_at=version.changed_at,
                note=version.note,
                rule=version.rule,
            )
            for version in entry.versions
        ],
        switch_history=[
            SwitchChangeOut(
                hospital_id=switch.hospital_id,
                department=switch.department or None,
                enabled=switch.enabled,
                changed_by=switch.changed_by,
                changed_at=switch.changed_at,
                note=switch.note,
            )
            for switch in entry.switch_history
        ],
    )


@router.get("/v1/rules", response_model=RuleList)
async def list_rules(db_session: SessionDep, caller: RuleReader) -> RuleList:
    """Every rule of the registry at its newest version (where it came from, who changed
    it and when, whether it is in force) with its switches in the caller's hospitals."""
    entries = await registry.list_rules(db_session=db_session, hospitals=_visible(caller))
    generation = await registry.registry_generation(db_session=db_session)
    return RuleList(items=[RuleOut(**_rule_out(entry)) for entry in entries], generation=generation)


@router.post(
    "/v1/rules/reload",
    response_model=ReloadOut,
    responses={422: {"model": ErrorBody, "description": "a rule file refused: nothing changed"}},
)
async def reload_rules(
    request: Request, db_session: SessionDep, caller: RuleWriter, now: NowDep
) -> ReloadOut:
    """Read the API's rule files (DRGWATCH_RULES_DIR, else the shipped rules) and import
    them: workers evaluate the rules in force from their next batch. A file refused
    (invalid, or changed without a new version) refuses the whole reload."""
    settings: CommonSettings = request.app.state.settings
    directory: Path = settings.rules_dir or DEFAULT_RULES_DIR
    report = await registry.import_rule_files(
        db_session=db_session, path=directory, changed_by=caller.name, now=now
    )
    if report.changed:
        await db_session.commit()
    else:
        await db_session.rollback()
    return ReloadOut(
        changed=report.changed,
        directory=str(directory),
        changes=[
            RuleChangeOut(
                rule_id=change.rule_id,
                action=change.action,
                version=change.version,
                file=None if change.file is None else Path(change.file).name,
                file_version=change.file_version,
                message=change.message,
            )
            for change in report.changes
        ],
        generation=await registry.registry_generation(db_session=db_session),
    )


@router.post(
    "/v1/rules/dry-run",
    response_model=DryRunOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DRY_RUN_BODY_SCHEMA}},
        }
    },
)
async def dry_run(
    body: ExactBody,
    db_session: SessionDep,
    caller: RuleWriter,
    price_book: PriceBookDep,
    now: NowDep,
) -> DryRunOut:
    """What a rule (not stored) would raise: a case rule over the open cases of the
    caller's hospitals, each case replayed from its events; a department rule over the
    current month's figures of their departments."""
    unknown = sorted(set(body) - {"rule", "hospital_id", "limit"})
    if unknown:
        raise RuleRefused([FieldError(field=name, reason="not a field") for name in unknown])
    data = body.get("rule")
    hospital_id = body.get("hospital_id")
    limit = body.get("limit", DRY_RUN_DEFAULT_LIMIT)
    if hospital_id is not None and not isinstance(hospital_id, str):
        raise RuleRefused([FieldError(field="hospital_id", reason="must be a string")])
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= DRY_RUN_MAX_LIMIT:
        raise RuleRefused(
            [FieldError(field="limit", reason=f"must be a whole number 1 to {DRY_RUN_MAX_LIMIT}")]
        )
    given_id = data.get("id") if isinstance(data, dict) else None
    rule_id = given_id if isinstance(given_id, str) and given_id else "dry-run"
    given_version = data.get("version") if isinstance(data, dict) else None
    version = given_version if isinstance(given_version, int) else 1
    rule = registry.validate_rule(data, rule_id=rule_id, version=version)
    result = await dryrun.dry_run(
        db_session=db_session,
        caller=caller,
        rule=rule,
        price_book=price_book,
        hospital_id=hospital_id,
        limit=limit,
        now=now,
    )
    return DryRunOut(
        rule_id=rule.id,
        kind=rule.kind,
        cases_checked=result.cases_checked,
        limit=limit,
        truncated=result.truncated,
        period=result.period,
        departments_checked=result.departments_checked,
        findings=[
            DryRunFinding(
                hospital_id=finding["hospital_id"],
                case_id=finding["case_id"],
                department=finding["department"],
                level=finding["level"],
                period=finding["period"],
                event_id=finding["event_id"],
                text_zh=finding["text_zh"],
                text_en=finding["text_en"],
                detail=finding["detail"],
            )
            for finding in result.findings
        ],
    )


@router.get("/v1/rules/{rule_id}", response_model=RuleDetail, responses=NOT_FOUND)
async def get_rule(rule_id: RuleIdPath, db_session: SessionDep, caller: RuleReader) -> RuleDetail:
    """A rule with every version (newest first) and its switches and their history."""
    entry = await registry.get_rule(
        db_session=db_session, rule_id=rule_id, hospitals=_visible(caller)
    )
    return _detail(entry)


@router.put(
    "/v1/rules/{rule_id}",
    response_model=RuleDetail,
    status_code=200,
    responses={201: {"model": RuleDetail, "description": "a new rule"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RULE_BODY_SCHEMA}},
        }
    },
)
async def put_rule(
    rule_id: RuleIdPath,
    body: ExactBody,
    db_session: SessionDep,
    caller: RuleWriter,
    now: NowDep,
    response: Response,
) -> RuleDetail:
    """A new version of the rule (validated as a rule file's rule; the server gives it the
    version after the registry's newest and records who and when); workers evaluate it
    from their next batch."""
    unknown = sorted(set(body) - {"rule", "note"})
    if unknown:
        raise RuleRefused([FieldError(field=name, reason="not a field") for name in unknown])
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 200):
        raise RuleRefused([FieldError(field="note", reason="a text of at most 200 characters")])
    if not caller.all_hospitals:
        await _check_rule_scope(db_session, caller, rule_id, body.get("rule"))
    _, created = await registry.put_rule(
        db_session=db_session,
        rule_id=rule_id,
        data=body.get("rule"),
        changed_by=caller.name,
        now=now,
        note=note,
    )
    await db_session.commit()
    if created:
        response.status_code = 201
    return _detail(
        await registry.get_rule(db_session=db_session, rule_id=rule_id, hospitals=_visible(caller))
    )


async def _check_rule_scope(
    db_session: SessionDep, caller: Principal, rule_id: str, data: Any
) -> None:
    """A caller of some hospitals changes only rules limited to hospitals of theirs."""
    hospitals = data.get("hospitals") if isinstance(data, dict) else None
    wanted = set(hospitals) if isinstance(hospitals, list) else set()
    mine = wanted and all(isinstance(h, str) and caller.sees_hospital(h) for h in wanted)
    try:
        current = await registry.get_rule(db_session=db_session, rule_id=rule_id, hospitals=None)
        covered = set(current.record.rule.get("hospitals") or [])
        mine = mine and bool(covered) and all(caller.sees_hospital(h) for h in covered)
    except UnknownRule:
        pass
    if not mine:
        raise NotPermitted(
            "rule.hospitals: this credential may change only rules limited to its own "
            "hospitals (list them in `hospitals`)"
        )


@router.put("/v1/rules/{rule_id}/switches", response_model=RuleDetail, responses=NOT_FOUND)
async def put_switch(
    rule_id: RuleIdPath,
    switch: SwitchIn,
    db_session: SessionDep,
    caller: RuleWriter,
    now: NowDep,
) -> RuleDetail:
    """Switch the rule off (`enabled` false) or on for a hospital, or for one department
    of it; a department's own switch wins over its hospital's."""
    _check_hospital(caller, switch.hospital_id)
    await registry.set_switch(
        db_session=db_session,
        rule_id=rule_id,
        hospital_id=switch.hospital_id,
        department=switch.department,
        enabled=switch.enabled,
        changed_by=caller.name,
        now=now,
        note=switch.note,
    )
    await db_session.commit()
    return _detail(
        await registry.get_rule(db_session=db_session, rule_id=rule_id, hospitals=_visible(caller))
    )


@router.delete("/v1/rules/{rule_id}/switches", response_model=RuleDetail, responses=NOT_FOUND)
async def delete_switch(
    rule_id: RuleIdPath,
    hospital_id: Annotated[Identifier, Query()],
    db_session: SessionDep,
    caller: RuleWriter,
    now: NowDep,
    department: Annotated[Code | None, Query()] = None,
) -> RuleDetail:
    """Clear a switch: the rule follows its hospital's switch (for a department) or its
    own `enabled` again. The change is kept in the switch history."""
    _check_hospital(caller, hospital_id)
    await registry.set_switch(
        db_session=db_session,
        rule_id=rule_id,
        hospital_id=hospital_id,
        department=department,
        enabled=None,
        changed_by=caller.name,
        now=now,
        note=None,
    )
    await db_session.commit()
    return _detail(
        await registry.get_rule(db_session=db_session, rule_id=rule_id, hospitals=_visible(caller))
    )


def _check_hospital(caller: Principal, hospital_id: str) -> None:
    if not caller.sees_hospital(hospital_id):
        raise NotPermitted(f"hospital_id: this credential may not switch rules of {hospital_id!r}")
