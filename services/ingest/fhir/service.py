"""Take a FHIR submission: read it, translate each resource into contract v1 events
(looking up what the ledger knows of each case), and record them through the ingest
core, which makes them durable before anything is acknowledged.

A single resource and a transaction Bundle are all or nothing: one refused resource
refuses the whole submission before anything is written. A batch Bundle is taken entry
by entry. An entry is refused whole (never half-recorded) when any event it yields
breaks the contract, and every refused resource is kept as a dead letter with why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import orjson
from fhir.resources.R4B.chargeitem import ChargeItem
from fhir.resources.R4B.encounter import Encounter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.exceptions import NotPermitted
from services.casecost.chargemaster import ChargeBook
from services.ingest import service as ingest_service
from services.ingest.fhir import resources, translate
from services.ingest.fhir.exceptions import FhirRefused, FhirUnreadable
from services.ingest.fhir.mapping import FhirMapping
from services.ingest.fhir.outcome import EntryAnswer, Issue, operation_outcome, response_bundle
from services.ingest.fhir.translate import CaseRef, KnownCase, Refused, Translation
from services.ingest.plausibility import TimeBounds
from services.ingest.schemas import ItemResult
from services.ingest.service import Accepted
from services.storage import dead_letters
from services.storage.models import DeadLetter, LedgerEntry
from services.validation import FieldError

CASE_EVENT_TYPES = (
    "admitted",
    "transferred",
    "drg_assigned",
    "discharged",
    "discharge_cancelled",
)


@dataclass
class FhirAnswer:
    """What to answer (status, FHIR body, Location) and what to publish once committed."""

    status: int
    body: dict[str, Any]
    location: str | None = None
    accepted: list[Accepted] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # events by result status


@dataclass
class _Entry:
    """One resource on its way: its translation or the issues that refuse it."""

    entry: resources.Entry
    translation: Translation | None = None
    issues: list[Issue] = field(default_factory=list)
    hospital_id: str | None = None
    case_id: str | None = None
    results: list[ItemResult] = field(default_factory=list)
    kept: bool = False  # its refused events are dead letters already


async def submit(
    *,
    db_session: AsyncSession,
    raw: bytes,
    mapping: FhirMapping,
    zone: tzinfo,
    now: datetime,
    bounds: TimeBounds,
    sees_hospital: Callable[[str], bool],
    charge_book: ChargeBook,
    caller_hospital: str | None = None,
) -> FhirAnswer:
    """Record a FHIR submission received at `now`; the caller commits, then publishes.
    `caller_hospital`: the one hospital the caller posts for, if its credential has one;
    `charge_book`: the chargemasters, for the categories the mapping does not give.

    Raises FhirRefused (with the dead letters to keep) for a refused resource or
    transaction, and NotPermitted for a resource of a hospital the caller does not see.
    """
    try:
        submission = resources.split(resources.decode(raw))
    except resources.Unreadable as error:
        raise _unreadable(error.issue, raw, now) from None
    entries = await _translate_all(
        db_session,
        submission,
        mapping,
        zone,
        caller_hospital,
        now=now,
        bounds=bounds,
        charge_book=charge_book,
    )
    for entry in entries:
        if entry.hospital_id and entry.translation and not sees_hospital(entry.hospital_id):
            raise NotPermitted(
                f"{entry.translation.location}: this credential may not post for"
                f" {entry.hospital_id!r}"
            )
    whole = submission.kind != "batch"
    if whole and any(entry.issues for entry in entries):
        raise _refusal(submission, entries, now, sees_hospital)
    items, owners = _events_of(entries)
    accepted: list[Accepted] = []
    letters: list[DeadLetter] = []
    if items:
        recording = await ingest_service.record_each(
            db_session=db_session, items=items, now=now, bounds=bounds
        )
        accepted = recording.accepted
        letters += recording.letters.values()
        for item_result in recording.results:
            owner = entries[owners[item_result.index]]
            owner.results.append(item_result)
            if item_result.status == "rejected":
                owner.issues += _contract_issues(owner, item_result.errors)
                owner.kept = True
    if whole and any(entry.issues for entry in entries):
        await db_session.rollback()  # kept below as the refused resources themselves
        raise _refusal(submission, entries, now, sees_hospital)
    letters += [
        _letter(entry, now, sees_hospital) for entry in entries if entry.issues and not entry.kept
    ]
    db_session.add_all(letters)
    answers = [_answer(entry) for entry in entries]
    counts = _counts(entries)
    if submission.kind == "resource":
        answer = answers[0]
        return FhirAnswer(
            status=answer.status,
            body=operation_outcome(answer.issues),
            location=answer.location,
            accepted=accepted,
            counts=counts,
        )
    return FhirAnswer(
        status=200,
        body=response_bundle(submission.kind, answers),
        accepted=accepted,
        counts=counts,
    )


async def _translate_all(
    db_session: AsyncSession,
    submission: resources.Submission,
    mapping: FhirMapping,
    zone: tzinfo,
    caller_hospital: str | None,
    *,
    now: datetime,
    bounds: TimeBounds,
    charge_book: ChargeBook,
) -> list[_Entry]:
    """Translate the entries in order, each seeing what the earlier ones will record.

    An entry any of whose events breaks the contract (or its times) is refused whole
    here, before anything is recorded, so that a resource is never half-recorded and
    no later entry builds on it (a credit on a charge that was refused).
    """
    parsed = [(entry, resources.parse(entry.raw)) for entry in submission.entries]
    encounter_ids: dict[str, str] = {}  # a Bundle's Encounters by fullUrl
    encounter_hospitals: dict[str, str] = {}
    for entry, resource in parsed:
        if isinstance(resource, Encounter) and resource.id:
            if entry.full_url:
                encounter_ids[entry.full_url] = str(resource.id)
            with contextlib.suppress(Refused):  # refused again, with reasons, below
                encounter_hospitals[str(resource.id)] = translate.hospital_of(
                    resource, mapping=mapping, bundle_hospital=None, caller_hospital=caller_hospital
                )
    known: dict[CaseRef, KnownCase] = {}
    charges: dict[tuple[str, str], dict[str, Any]] = {}
    done: list[_Entry] = []
    for entry, resource in parsed:
        step = _Entry(entry)
        done.append(step)
        if isinstance(resource, list):
            step.issues = resource
            continue
        try:
            if isinstance(resource, Encounter):
                hospital_id = translate.hospital_of(
                    resource, mapping=mapping, bundle_hospital=None, caller_hospital=caller_hospital
                )
                step.hospital_id = hospital_id
                case = CaseRef(hospital_id, str(resource.id or ""))
                step.case_id = case.case_id or None
                before = known.get(case) or await _known_case(db_session, case)
                step.translation = translate.encounter_events(
                    resource, hospital_id=hospital_id, known=before, mapping=mapping, zone=zone
                )
            else:
                step.translation, case, before = await _translate_charge(
                    db_session,
                    step,
                    resource,
                    mapping,
                    zone,
                    encounter_ids,
                    encounter_hospitals,
                    known,
                    charges,
                    caller_hospital,
                    charge_book,
                )
        except Refused as refusal:
            step.issues = refusal.issues
            continue
        _, rejected, _ = ingest_service.validate_items(
            step.translation.events, now=now, bounds=bounds
        )
        for result in rejected:
            step.issues += _contract_issues(step, result.errors)
        if step.issues:
            continue
        known[case] = translate.after(before, step.translation.events)
        for event in step.translation.events:
            if event["type"] == "charge":
                charges[(event["hospital_id"], event["event_id"])] = event
    return done


async def _translate_charge(
    db_session: AsyncSession,
    step: _Entry,
    item: ChargeItem,
    mapping: FhirMapping,
    zone: tzinfo,
    encounter_ids: dict[str, str],
    encounter_hospitals: dict[str, str],
    known: dict[CaseRef, KnownCase],
    charges: dict[tuple[str, str], dict[str, Any]],
    caller_hospital: str | None,
    charge_book: ChargeBook,
) -> tuple[Translation, CaseRef, KnownCase]:
    case_id = translate.case_of_charge(item, encounter_ids)
    hospital_id = translate.hospital_of(
        item,
        mapping=mapping,
        bundle_hospital=encounter_hospitals.get(case_id),
        caller_hospital=caller_hospital,
    )
    step.hospital_id, step.case_id = hospital_id, case_id
    case = CaseRef(hospital_id, case_id)
    before = known.get(case) or await _known_case(db_session, case)
    original = None
    if item.status == "entered-in-error" and item.id:
        charge_id = translate.event_id("ci", str(item.id))
        original = charges.get((hospital_id, charge_id)) or await _ledger_event(
            db_session, hospital_id, charge_id
        )
    translation = translate.charge_events(
        item,
        case=case,
        known=before,
        original=original,
        mapping=mapping,
        zone=zone,
        charge_book=charge_book,
    )
    return translation, case, before


async def _known_case(db_session: AsyncSession, case: CaseRef) -> KnownCase:
    """What the ledger knows of a case: its stay events folded in `occurred_at` order
    (last writer wins, as the cost core counts them)."""
    if not case.case_id:
        return KnownCase()
    rows = await db_session.execute(
        select(LedgerEntry.payload)
        .where(
            LedgerEntry.hospital_id == case.hospital_id,
            LedgerEntry.case_id == case.case_id,
            LedgerEntry.event_type.in_(CASE_EVENT_TYPES),
        )
        .order_by(LedgerEntry.seq)
    )
    events = [orjson.loads(payload) for payload in rows.scalars()]
    # at the same moment a cancellation follows the discharge it withdraws
    events.sort(
        key=lambda event: (
            datetime.fromisoformat(event["occurred_at"]),
            event["type"] == "discharge_cancelled",
        )
    )
    return translate.after(KnownCase(), events)


async def _ledger_event(
    db_session: AsyncSession, hospital_id: str, event_id: str
) -> dict[str, Any] | None:
    payload = await db_session.scalar(
        select(LedgerEntry.payload).where(
            LedgerEntry.hospital_id == hospital_id, LedgerEntry.event_id == event_id
        )
    )
    return None if payload is None else dict(orjson.loads(payload))


def _events_of(entries: list[_Entry]) -> tuple[list[dict[str, Any]], list[int]]:
    """The events of the entries not refused, and the entry each came from."""
    items: list[dict[str, Any]] = []
    owners: list[int] = []
    for position, entry in enumerate(entries):
        if entry.translation is None or entry.issues:
            continue
        items += entry.translation.events
        owners += [position] * len(entry.translation.events)
    return items, owners


def _contract_issues(entry: _Entry, errors: list[FieldError]) -> list[Issue]:
    translation = entry.translation
    kind = translation.location.split("/")[0] if translation else "Resource"
    expressions = translation.expressions if translation else {}
    return [
        Issue(
            expressions.get(error.field, kind),
            f"{error.reason} (contract v1 field {error.field})"
            + (_CHANGED.get(kind, "") if error.field == "event_id" else ""),
            "business-rule" if error.field == "event_id" else "value",
        )
        for error in errors
    ]


# what to do instead when a resource already recorded comes again with other content
_CHANGED = {
    "ChargeItem": ": a recorded charge cannot change; send this ChargeItem as"
    " entered-in-error and the corrected charge as a new ChargeItem",
    "Encounter": ": this version of the Encounter was recorded with other content;"
    " send the change as a new version (meta.versionId)",
}


def _answer(entry: _Entry) -> EntryAnswer:
    location = entry.translation.location if entry.translation else None
    if entry.issues:
        return EntryAnswer(422, None, entry.issues)
    kind = location.split("/")[0] if location else "Resource"
    notes = [
        Issue(
            kind,
            f"event {result.event_id}: {result.status}",
            "informational",
            "information",
        )
        for result in entry.results
    ]
    expressions = entry.translation.expressions if entry.translation else {}
    notes += entry.translation.notes if entry.translation else []
    notes += [
        Issue(
            expressions.get(warning.field, kind),
            f"event {result.event_id}: {warning.field} {warning.reason}",
            "informational",
            "warning",
        )
        for result in entry.results
        for warning in result.warnings
    ]
    if not entry.results:
        notes.append(
            Issue(
                kind, "nothing new: the case already holds all this", "informational", "information"
            )
        )
    created = any(result.status == "accepted" for result in entry.results)
    return EntryAnswer(201 if created else 200, location, notes)


def _counts(entries: list[_Entry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        for result in entry.results:
            counts[result.status] = counts.get(result.status, 0) + 1
        if entry.issues and not any(r.status == "rejected" for r in entry.results):
            counts["rejected"] = counts.get("rejected", 0) + 1
    return counts


def _letter(entry: _Entry, now: datetime, sees_hospital: Callable[[str], bool]) -> DeadLetter:
    """A refused resource, kept with its reasons; listed under its hospital when the
    caller may post for that hospital (and else only to those who see every one)."""
    letter = dead_letters.dead_letter(
        stage="ingest",
        raw=resources.encode(entry.entry.raw),  # the resource as sent, decimals exact
        reason="; ".join(f"{issue.expression}: {issue.reason}" for issue in entry.issues),
        errors=[{"field": issue.expression, "reason": issue.reason} for issue in entry.issues],
        now=now,
        attribute=False,
    )
    if entry.hospital_id and sees_hospital(entry.hospital_id):
        letter.hospital_id = dead_letters.storable(entry.hospital_id)[:64]
        letter.case_id = dead_letters.storable(entry.case_id)[:64] if entry.case_id else None
    return letter


def _refusal(
    submission: resources.Submission,
    entries: list[_Entry],
    now: datetime,
    sees_hospital: Callable[[str], bool],
) -> FhirRefused:
    """The whole submission refused: one OperationOutcome naming every element at fault."""
    single = submission.kind == "resource"
    issues = [
        issue if single else issue.in_entry(entry.entry.index)
        for entry in entries
        for issue in entry.issues
    ]
    refused = [entry for entry in entries if entry.issues]
    what = (
        "the resource" if single else f"the transaction ({len(refused)} of {len(entries)} entries)"
    )
    return FhirRefused(
        f"{what} is refused; nothing was recorded",
        outcome=operation_outcome(issues),
        errors=[FieldError(field=issue.expression, reason=issue.reason) for issue in issues],
        letters=[_letter(entry, now, sees_hospital) for entry in refused],
    )


def _unreadable(issue: Issue, raw: bytes, now: datetime) -> FhirUnreadable:
    try:
        kept: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        kept = raw[: dead_letters.MAX_PAYLOAD_CHARS].decode("utf-8", "replace")
    return FhirUnreadable(
        issue.reason,
        outcome=operation_outcome([issue]),
        errors=[FieldError(field=issue.expression, reason=issue.reason)],
        letters=[
            dead_letters.dead_letter(
                stage="ingest",
                raw=kept,
                reason=f"{issue.expression}: {issue.reason}",
                errors=[{"field": issue.expression, "reason": issue.reason}],
                now=now,
                attribute=False,
            )
        ],
    )
