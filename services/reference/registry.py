"""The rule registry: every version of every monitoring rule, and where rules are switched off.

Rules are written in files (services/reference/rules.py reads them) and changed through
the API; the registry (tables rule_versions, rule_heads, rule_switches, rule_generation)
keeps both. The rules in force are each rule's newest version (`rule_heads`), less rules
no file holds any more, and the switches turn a rule off for a hospital or one of its
departments (`RuleSwitches`, passed into `CaseRules.compile` and `evaluate_department`).

Importing the files (`plan_import`, pure; `import_rules` writes the plan):

    file rule not in the registry             added
    file version above the registry's newest  a new version (source: the file)
    same version, same content                unchanged (back in force if it was not)
    same version, other content               refused: "bump its version"
    file version below the registry's newest  kept as the registry has it (changed
                                              through the API since), and said so
    a rule last written by a file that no
    file holds any more                       retired: no longer in force

A refusal refuses the whole import: nothing is written. Every write starts by bumping
the generation row, so writers queue behind its lock (a row lock on PostgreSQL, the
write lock on SQLite) and two processes importing at once cannot both insert; workers
poll the generation (`registry_generation`) and reload when it moved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.casecost.rules import (
    CASE_KINDS,
    DEPARTMENT_KINDS,
    CaseRule,
    DepartmentRule,
    Rule,
    RuleSet,
    RuleSwitches,
)
from services.reference.exceptions import RuleFilesRefused, RuleRefused, UnknownRule
from services.reference.rules import RuleProblem, load_rule_files
from services.storage.models import RuleGeneration, RuleHead, RuleSwitchRecord, RuleVersionRecord
from services.validation import FieldError

log = logging.getLogger(__name__)

API_SOURCE = "api"
FILE_SOURCE_PREFIX = "file:"
# the department of a switch for a whole hospital (a key column cannot be null everywhere)
WHOLE_HOSPITAL = ""
RULE_ADAPTER: TypeAdapter[CaseRule | DepartmentRule] = TypeAdapter(Rule)
# a discriminated union's error locations start with the kind: dropped from field names
_KIND_TAGS = frozenset((*CASE_KINDS, *DEPARTMENT_KINDS))

Action = Literal["added", "updated", "unchanged", "restored", "kept", "retired"]


@dataclass(frozen=True, slots=True)
class StoredRule:
    """A rule's newest version in the registry, as planning needs it."""

    rule_id: str
    version: int
    content: Mapping[str, Any]
    source: str
    in_force: bool


@dataclass(frozen=True, slots=True)
class RuleChange:
    """What an import does (or did) to one rule."""

    rule_id: str
    action: Action
    version: int  # the version in force afterwards
    file: str | None = None  # the file that holds the rule (None: no file does)
    file_version: int | None = None
    message: str = ""

    @property
    def writes(self) -> bool:
        return self.action in ("added", "updated", "restored", "retired")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Every rule of the files and every rule retired, in the files' order."""

    changes: tuple[RuleChange, ...]

    @property
    def changed(self) -> bool:
        return any(change.writes for change in self.changes)

    def lines(self) -> list[str]:
        """One line per rule that is not simply unchanged."""
        return [
            f"{change.rule_id}: {change.message}"
            for change in self.changes
            if change.action != "unchanged"
        ]


def source_of(path: str) -> str:
    """A file's source as the registry records it: its name, not where it was read from."""
    return f"{FILE_SOURCE_PREFIX}{Path(path).name}"


def rule_content(rule: CaseRule | DepartmentRule) -> dict[str, Any]:
    """The rule as the registry stores it (JSON; decimals as their text)."""
    return rule.model_dump(mode="json")


def plan_import(stored: Mapping[str, StoredRule], rules: RuleSet) -> ImportReport:
    """What importing the file rules `rules` into a registry holding `stored` does
    (see the module's docstring); raises RuleFilesRefused naming every rule refused."""
    changes: list[RuleChange] = []
    problems: list[RuleProblem] = []
    for rule in rules.rules:
        file = rules.sources.get(rule.id, "")
        known = stored.get(rule.id)
        content = rule_content(rule)
        version = rule.version
        if known is None:
            changes.append(
                RuleChange(rule.id, "added", version, file, version, f"added (version {version})")
            )
        elif version > known.version:
            changes.append(
                RuleChange(
                    rule.id,
                    "updated",
                    version,
                    file,
                    version,
                    f"version {known.version} -> {version}",
                )
            )
        elif version == known.version:
            if dict(known.content) != content:
                problems.append(
                    RuleProblem(
                        file,
                        f"changed, but its version is still {version} (as in the registry): "
                        "bump its version",
                        rule=rule.id,
                        field="version",
                    )
                )
            elif known.in_force:
                changes.append(
                    RuleChange(rule.id, "unchanged", version, file, version, "unchanged")
                )
            else:
                changes.append(
                    RuleChange(
                        rule.id,
                        "restored",
                        version,
                        file,
                        version,
                        f"back in force (version {version})",
                    )
                )
        else:
            where = "through the API" if known.source == API_SOURCE else f"by {known.source}"
            changes.append(
                RuleChange(
                    rule.id,
                    "restored" if not known.in_force else "kept",
                    known.version,
                    file,
                    version,
                    f"kept at version {known.version} as the registry has it (changed {where}"
                    f" since); the file's version {version} is older",
                )
            )
    if problems:
        raise RuleFilesRefused(problems)
    in_files = {rule.id for rule in rules.rules}
    for rule_id, known in sorted(stored.items()):
        if rule_id in in_files or not known.in_force:
            continue
        if known.source.startswith(FILE_SOURCE_PREFIX):
            changes.append(
                RuleChange(
                    rule_id,
                    "retired",
                    known.version,
                    None,
                    None,
                    f"retired: no rule file holds it any more (it came from "
                    f"{known.source.removeprefix(FILE_SOURCE_PREFIX)})",
                )
            )
    return ImportReport(tuple(changes))


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RulesInForce:
    """The rules in force (newest versions, in the order they were first registered),
    the switches, and the generation they were read at."""

    rule_set: RuleSet
    switches: RuleSwitches
    generation: int


async def registry_generation(*, db_session: AsyncSession) -> int:
    """The registry's generation: it moves with every change (a cheap poll)."""
    generation = await db_session.scalar(
        select(RuleGeneration.generation).where(RuleGeneration.id == 1)
    )
    return int(generation or 0)


async def rules_in_force(*, db_session: AsyncSession) -> RulesInForce:
    generation = await registry_generation(db_session=db_session)
    rows = (
        await db_session.execute(
            select(RuleVersionRecord)
            .join(
                RuleHead,
                (RuleHead.rule_id == RuleVersionRecord.rule_id)
                & (RuleHead.version == RuleVersionRecord.version),
            )
            .where(RuleHead.in_force.is_(True))
        )
    ).scalars()
    first_seen = await _first_registered(db_session)
    records = sorted(rows, key=lambda record: first_seen.get(record.rule_id, record.id))
    rules = tuple(RULE_ADAPTER.validate_python(record.rule) for record in records)
    sources = {record.rule_id: record.source for record in records}
    return RulesInForce(
        RuleSet(rules=rules, sources=sources),
        await switches_in_force(db_session=db_session),
        generation,
    )


async def switches_in_force(*, db_session: AsyncSession) -> RuleSwitches:
    current = await _current_switches(db_session=db_session)
    return RuleSwitches(
        {
            (record.rule_id, record.hospital_id, record.department or None): record.enabled
            for record in current
            if record.enabled is not None
        }
    )


async def _current_switches(
    *, db_session: AsyncSession, rule_id: str | None = None
) -> list[RuleSwitchRecord]:
    """The newest switch row per rule, hospital and department (cleared ones included)."""
    newest = select(func.max(RuleSwitchRecord.id)).group_by(
        RuleSwitchRecord.rule_id, RuleSwitchRecord.hospital_id, RuleSwitchRecord.department
    )
    if rule_id is not None:
        newest = newest.where(RuleSwitchRecord.rule_id == rule_id)
    rows = await db_session.execute(
        select(RuleSwitchRecord)
        .where(RuleSwitchRecord.id.in_(newest))
        .order_by(
            RuleSwitchRecord.rule_id, RuleSwitchRecord.hospital_id, RuleSwitchRecord.department
        )
    )
    return list(rows.scalars())


async def _first_registered(db_session: AsyncSession) -> dict[str, int]:
    """Each rule's first version row: rules are listed in the order they came."""
    rows = await db_session.execute(
        select(RuleVersionRecord.rule_id, func.min(RuleVersionRecord.id)).group_by(
            RuleVersionRecord.rule_id
        )
    )
    return dict(rows.tuples().all())


async def _stored(*, db_session: AsyncSession) -> dict[str, StoredRule]:
    rows = await db_session.execute(
        select(RuleHead, RuleVersionRecord).join(
            RuleVersionRecord,
            (RuleVersionRecord.rule_id == RuleHead.rule_id)
            & (RuleVersionRecord.version == RuleHead.version),
        )
    )
    return {
        head.rule_id: StoredRule(
            head.rule_id, head.version, record.rule, record.source, head.in_force
        )
        for head, record in rows.tuples()
    }


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """A rule's newest version with where it came from, whether it is in force, its
    current switches, and (for one rule) its history."""

    head: RuleHead
    record: RuleVersionRecord
    switches: list[RuleSwitchRecord]
    versions: list[RuleVersionRecord]
    switch_history: list[RuleSwitchRecord]


async def list_rules(
    *, db_session: AsyncSession, hospitals: frozenset[str] | None
) -> list[RuleEntry]:
    """Every rule with its newest version, first registered first; switches of the
    `hospitals` only (None: every hospital)."""
    rows = (
        await db_session.execute(
            select(RuleHead, RuleVersionRecord).join(
                RuleVersionRecord,
                (RuleVersionRecord.rule_id == RuleHead.rule_id)
                & (RuleVersionRecord.version == RuleHead.version),
            )
        )
    ).tuples()
    first_seen = await _first_registered(db_session)
    switches: dict[str, list[RuleSwitchRecord]] = {}
    for switch in await _current_switches(db_session=db_session):
        if switch.enabled is not None and _visible(switch.hospital_id, hospitals):
            switches.setdefault(switch.rule_id, []).append(switch)
    entries = [
        RuleEntry(head, record, switches.get(head.rule_id, []), [], []) for head, record in rows
    ]
    return sorted(entries, key=lambda entry: first_seen.get(entry.head.rule_id, 0))


async def get_rule(
    *, db_session: AsyncSession, rule_id: str, hospitals: frozenset[str] | None
) -> RuleEntry:
    """One rule with every version (newest first) and its switches' history."""
    head = await db_session.get(RuleHead, rule_id)
    if head is None:
        raise UnknownRule(f"rule_id: no rule {rule_id!r}")
    versions = list(
        (
            await db_session.execute(
                select(RuleVersionRecord)
                .where(RuleVersionRecord.rule_id == rule_id)
                .order_by(RuleVersionRecord.version.desc())
            )
        ).scalars()
    )
    record = next(version for version in versions if version.version == head.version)
    history = [
        switch
        for switch in (
            await db_session.execute(
                select(RuleSwitchRecord)
                .where(RuleSwitchRecord.rule_id == rule_id)
                .order_by(RuleSwitchRecord.id.desc())
            )
        ).scalars()
        if _visible(switch.hospital_id, hospitals)
    ]
    current = [
        switch
        for switch in await _current_switches(db_session=db_session, rule_id=rule_id)
        if switch.enabled is not None and _visible(switch.hospital_id, hospitals)
    ]
    return RuleEntry(head, record, current, versions, history)


def _visible(hospital_id: str, hospitals: frozenset[str] | None) -> bool:
    return hospitals is None or hospital_id in hospitals


# --- writing ---------------------------------------------------------------------------------


async def _next_generation(db_session: AsyncSession) -> None:
    """Bump the generation first: later writers wait here for this transaction."""
    result = await db_session.execute(
        update(RuleGeneration)
        .where(RuleGeneration.id == 1)
        .values(generation=RuleGeneration.generation + 1)
    )
    if not getattr(result, "rowcount", 0):
        await db_session.execute(insert(RuleGeneration).values(id=1, generation=1))


async def import_rules(
    *, db_session: AsyncSession, rules: RuleSet, changed_by: str, now: datetime
) -> ImportReport:
    """Import file rules into the registry (see the module's docstring); the caller
    commits when the report says something changed. Raises RuleFilesRefused, having
    written nothing the caller would commit."""
    await _next_generation(db_session)
    report = plan_import(await _stored(db_session=db_session), rules)
    by_id = {rule.id: rule for rule in rules.rules}
    for change in report.changes:
        if change.action in ("added", "updated"):
            rule = by_id[change.rule_id]
            await _add_version(
                db_session,
                rule,
                source=source_of(change.file or ""),
                changed_by=changed_by,
                now=now,
                note=None,
            )
        elif change.action in ("restored", "retired"):
            await db_session.execute(
                update(RuleHead)
                .where(RuleHead.rule_id == change.rule_id)
                .values(in_force=change.action == "restored", updated_at=now)
            )
    return report


async def _add_version(
    db_session: AsyncSession,
    rule: CaseRule | DepartmentRule,
    *,
    source: str,
    changed_by: str,
    now: datetime,
    note: str | None,
) -> RuleVersionRecord:
    record = RuleVersionRecord(
        rule_id=rule.id,
        version=rule.version,
        kind=rule.kind,
        rule=rule_content(rule),
        source=source,
        changed_by=changed_by,
        changed_at=now,
        note=note,
    )
    db_session.add(record)
    head = await db_session.get(RuleHead, rule.id)
    if head is None:
        db_session.add(
            RuleHead(rule_id=rule.id, version=rule.version, in_force=True, updated_at=now)
        )
    else:
        head.version = rule.version
        head.in_force = True
        head.updated_at = now
    await db_session.flush()
    return record


def validate_rule(data: Any, *, rule_id: str, version: int) -> CaseRule | DepartmentRule:
    """A rule as written to the API, with its id and the version the server gives it;
    raises RuleRefused naming each field wrong."""
    if not isinstance(data, dict):
        raise RuleRefused([FieldError(field="rule", reason="must be an object")])
    given = data.get("id")
    if given is not None and given != rule_id:
        raise RuleRefused(
            [
                FieldError(
                    field="rule.id", reason=f"must be {rule_id!r}, as in the path, or left out"
                )
            ]
        )
    try:
        return RULE_ADAPTER.validate_python({**data, "id": rule_id, "version": version})
    except ValidationError as error:
        raise RuleRefused(rule_field_errors(error, prefix="rule")) from None


def rule_field_errors(error: ValidationError, *, prefix: str) -> list[FieldError]:
    """A rule's validation errors as fields (`rule.params.factor`), without the union's tag."""
    found = []
    for detail in error.errors(include_url=False):
        location = [str(part) for part in detail["loc"]]
        if location and location[0] in _KIND_TAGS:
            location = location[1:]
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            location = [*location, "kind"]
        reason = str(detail["msg"]).removeprefix("Value error, ")
        found.append(FieldError(field=".".join([prefix, *location]), reason=reason))
    return found


async def put_rule(
    *,
    db_session: AsyncSession,
    rule_id: str,
    data: Any,
    changed_by: str,
    now: datetime,
    note: str | None,
) -> tuple[RuleVersionRecord, bool]:
    """A new version of a rule (or its first) through the API: the version after the
    registry's newest; True when the rule is new."""
    await _next_generation(db_session)
    head = await db_session.get(RuleHead, rule_id)
    version = 1 if head is None else head.version + 1
    rule = validate_rule(data, rule_id=rule_id, version=version)
    record = await _add_version(
        db_session, rule, source=API_SOURCE, changed_by=changed_by, now=now, note=note
    )
    return record, head is None


async def set_switch(
    *,
    db_session: AsyncSession,
    rule_id: str,
    hospital_id: str,
    department: str | None,
    enabled: bool | None,
    changed_by: str,
    now: datetime,
    note: str | None,
) -> RuleSwitchRecord:
    """Switch a rule off (or on) for a hospital or one department of it; `enabled` None
    clears the switch. Every change is kept."""
    await _next_generation(db_session)
    if await db_session.get(RuleHead, rule_id) is None:
        raise UnknownRule(f"rule_id: no rule {rule_id!r}")
    record = RuleSwitchRecord(
        rule_id=rule_id,
        hospital_id=hospital_id,
        department=department or WHOLE_HOSPITAL,
        enabled=enabled,
        changed_by=changed_by,
        changed_at=now,
        note=note,
    )
    db_session.add(record)
    await db_session.flush()
    return record


async def import_rule_files(
    *, db_session: AsyncSession, path: Path, changed_by: str, now: datetime
) -> ImportReport:
    """Read the rule files of `path` (services/reference/rules.py) and import them; raises
    RuleFilesRefused for a file that does not validate or that the registry refuses."""
    return await import_rules(
        db_session=db_session, rules=load_rule_files(path), changed_by=changed_by, now=now
    )


async def import_at_start(
    sessions: async_sessionmaker[AsyncSession], rules: RuleSet | Path, *, changed_by: str
) -> None:
    """Import the rule files (read from `rules` when it is a directory) as a process
    starts: API and workers each do, and the registry takes them once. A refusal is
    logged and the registry's rules stay in force; `drgwatch rules reload` names it."""
    async with sessions() as db_session:
        try:
            loaded = load_rule_files(rules) if isinstance(rules, Path) else rules
            report = await import_rules(
                db_session=db_session, rules=loaded, changed_by=changed_by, now=datetime.now(UTC)
            )
        except RuleFilesRefused as error:
            await db_session.rollback()
            log.error("rule files not imported, the registry's rules stay:\n%s", error)
            return
        if not report.changed:
            await db_session.rollback()
            return
        await db_session.commit()
    for line in report.lines():
        log.info("rule %s", line)
