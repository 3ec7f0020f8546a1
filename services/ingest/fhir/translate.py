"""One FHIR resource as contract v1 events: pure, no I/O.

What the resource does not say, the caller looks up and passes in: the case as the
ledger knows it (`KnownCase`: admitted yet? department, DRG, discharged?) and, for a
ChargeItem entered in error, the charge event it withdraws.

Encounter (admitted / transferred / drg_assigned / discharged)
    status arrived, in-progress, onleave or finished with period.start: the case is
    admitted (once: `fhir:enc:{id}:admitted`) in the department of its first location
    (by period.start), with the working DRG if the Encounter carries one and the
    insurance scheme from the extension or the hospital's mapping. A department other
    than the one the ledger knows is a transfer, and a DRG other than the known one is
    a regrouping: each gets an id from the Encounter id and its meta.versionId (or, with
    no versionId, a hash of the new value and its time), so sending the same version
    again is a duplicate and a later version with nothing new adds nothing. Status
    finished with period.end discharges the case (once: `fhir:enc:{id}:discharged`).
    An Encounter of a case the ledger knows as discharged that is arrived, in-progress or
    onleave again with no period.end cancels the discharge (`discharge_cancelled` at
    meta.lastUpdated, id from the versionId or a hash of that time); a later finished
    version discharges the case again under an id of its own
    (`fhir:enc:{id}:discharged:{versionId}`), dated meta.lastUpdated when that is later
    than period.end, so that it outranks the cancellation. A version dated no later than
    the discharge or cancellation in force (an older one sent again) adds nothing.
    planned and triaged Encounters are not stays yet; cancelled and entered-in-error
    ones would withdraw an admission, which contract v1 cannot express: all refused.

ChargeItem (charge / credit)
    billable or billed: a charge `fhir:ci:{id}` of the case its context names (the
    Encounter id is the case id). entered-in-error: a credit `fhir:ci:{id}:reversal`
    of exactly the original charge, which must be known; other statuses are refused.
    The amount is priceOverride (the line's total, R4) or quantity x the unit-price
    extension; with both, they must agree. The category is the mapping's for the
    coding's system, else the item's in the chargemaster in force for the hospital on
    the charge's local day (passed in as a `ChargeBook`), else `other`, with a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fhir.resources.R4B.chargeitem import ChargeItem
from fhir.resources.R4B.encounter import Encounter

from services.casecost.chargemaster import ChargeBook
from services.casecost.events import CENT, Category
from services.ingest.fhir.mapping import FhirMapping
from services.ingest.fhir.outcome import Issue

ADMITTED_STATUSES = frozenset({"arrived", "in-progress", "onleave", "finished"})
CHARGED_STATUSES = frozenset({"billable", "billed"})
UNIT_PLACES = Decimal("0.0001")
MAX_EVENT_ID = 64
# a charge's fields the credit that withdraws it repeats
REVERSED_FIELDS = (
    "hospital_id",
    "case_id",
    "department",
    "item_code",
    "item_name",
    "category",
    "quantity",
    "unit_price",
    "amount",
    "ordered_by",
    "order_id",
)


class Refused(Exception):
    """The resource cannot become events; each issue names the element and why."""

    def __init__(self, *issues: Issue) -> None:
        super().__init__("; ".join(issue.reason for issue in issues))
        self.issues = list(issues)


@dataclass(frozen=True, slots=True)
class KnownCase:
    """A case as the ledger (and earlier entries of the same submission) know it."""

    admitted: bool = False
    department: str | None = None
    drg_code: str | None = None
    discharged: bool = False
    # the occurred_at of the discharge, or of its cancellation, in force
    discharge_moment: datetime | None = None
    # a discharge was cancelled: the next one needs an event id of its own
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class Translation:
    """The events of one resource; `expressions` names, per event field, the element
    it came from (so that a refusal by the contract names the FHIR element)."""

    events: list[dict[str, Any]]
    location: str  # the resource's own reference, e.g. ChargeItem/c1/_history/2
    expressions: dict[str, str] = field(default_factory=dict)
    notes: list[Issue] = field(default_factory=list)  # what was assumed (warnings)


@dataclass(frozen=True, slots=True)
class CaseRef:
    hospital_id: str
    case_id: str


def event_id(*parts: str) -> str:
    """`fhir:` and the parts, or (when that is over 64 characters) `fhir:` and a hash
    of them: the same resource always gives the same id, and FHIR ids never meet the
    ids a hospital system posts to /v1/events."""
    text = ":".join(("fhir", *parts))
    if len(text) <= MAX_EVENT_ID:
        return text
    return f"fhir:{parts[0]}:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def short_hash(*values: str) -> str:
    return hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:12]


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id a Reference names if it is of `resource_type`: `Encounter/e1`, an
    absolute URL ending so, or either with `/_history/{vid}`."""
    text = getattr(reference, "reference", None) if reference is not None else None
    if not isinstance(text, str):
        return None
    parts = text.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def moment(value: Any, zone: tzinfo) -> datetime | None:
    """A FHIR dateTime as an aware datetime; a bare date is the start of that local day
    (a dateTime with a time always carries its offset in FHIR)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), zone)
    return None


def money_text(value: Decimal) -> str:
    return format(value, "f")


def hospital_of(
    resource: Encounter | ChargeItem,
    *,
    mapping: FhirMapping,
    bundle_hospital: str | None,
    caller_hospital: str | None = None,
) -> str:
    """The hospital a resource belongs to, in this order: a meta.tag of the mapping's
    hospital system; an Encounter's serviceProvider (mapped, or its Organization id);
    the hospital of the Bundle's Encounter a ChargeItem belongs to; a mapped
    organization of the ChargeItem; meta.source mapped; the one hospital the caller
    posts for (`caller_hospital`, when its credential has exactly one); the mapping's
    default hospital."""
    kind = resource.get_resource_type()
    meta = resource.meta
    for tag in (meta.tag or []) if meta else []:
        if tag.system == mapping.hospital_tag_system and tag.code:
            return str(tag.code)
    if isinstance(resource, Encounter) and resource.serviceProvider is not None:
        provider = resource.serviceProvider
        organization = reference_id(provider, "Organization")
        if organization:
            return mapping.organizations.get(organization, organization)
        if provider.identifier is not None and provider.identifier.value:
            value = str(provider.identifier.value)
            return mapping.organizations.get(value, value)
    if bundle_hospital:
        return bundle_hospital
    if isinstance(resource, ChargeItem):
        for reference in (resource.performingOrganization, resource.requestingOrganization):
            organization = reference_id(reference, "Organization")
            if organization and organization in mapping.organizations:
                return mapping.organizations[organization]
    if meta is not None and meta.source and str(meta.source) in mapping.sources:
        return mapping.sources[str(meta.source)]
    if caller_hospital:
        return caller_hospital
    if mapping.default_hospital:
        return mapping.default_hospital
    where = "serviceProvider" if kind == "Encounter" else "meta.tag"
    raise Refused(
        Issue(
            f"{kind}.{where}",
            f"no hospital: tag it (meta.tag system {mapping.hospital_tag_system})"
            + (", name the serviceProvider" if kind == "Encounter" else "")
            + " or configure a default hospital in the FHIR mapping",
            "required",
        )
    )


def resource_location(resource: Encounter | ChargeItem) -> str:
    kind = resource.get_resource_type()
    version = resource.meta.versionId if resource.meta else None
    return f"{kind}/{resource.id}/_history/{version}" if version else f"{kind}/{resource.id}"


def _require_id(resource: Encounter | ChargeItem) -> str:
    if not resource.id:
        kind = resource.get_resource_type()
        raise Refused(
            Issue(
                f"{kind}.id",
                "needed: the event ids are derived from it, so that sending the resource"
                " again is recognised",
                "required",
            )
        )
    return str(resource.id)


def _extension_code(extensions: Iterable[Any] | None, url: str) -> str | None:
    for extension in extensions or []:
        if extension.url != url:
            continue
        for value in (extension.valueCode, extension.valueString, extension.valueId):
            if value:
                return str(value)
        if extension.valueCoding is not None and extension.valueCoding.code:
            return str(extension.valueCoding.code)
        concept = extension.valueCodeableConcept
        for coding in (concept.coding or []) if concept else []:
            if coding.code:
                return str(coding.code)
    return None


# ---- Encounter ----


def encounter_events(
    encounter: Encounter,
    *,
    hospital_id: str,
    known: KnownCase,
    mapping: FhirMapping,
    zone: tzinfo,
) -> Translation:
    """The events an Encounter adds to what the ledger knows of its case (module doc)."""
    encounter_id = _require_id(encounter)
    status = str(encounter.status)
    if status in ("planned", "triaged"):
        raise Refused(
            Issue(
                "Encounter.status",
                f"{status}: the patient has not arrived; nothing to record until the"
                " Encounter is arrived or in-progress",
                "business-rule",
            )
        )
    if status not in ADMITTED_STATUSES:
        raise Refused(
            Issue(
                "Encounter.status",
                f"{status}: contract v1 has no event that withdraws an admission; correct"
                " the case in the hospital system and contact the insurance office",
                "not-supported",
            )
        )
    period = encounter.period
    admitted_at = moment(period.start if period else None, zone)
    if admitted_at is None:
        raise Refused(Issue("Encounter.period.start", "needed: when the stay began", "required"))
    hospital = mapping.hospital(hospital_id)
    version = encounter.meta.versionId if encounter.meta else None
    last_updated = moment(encounter.meta.lastUpdated if encounter.meta else None, zone)
    first, current = _departments(encounter, hospital_id, mapping, zone)
    drg_code, drg_where = _drg(encounter, mapping)
    base = {"hospital_id": hospital_id, "case_id": encounter_id}
    expressions = {
        "event_id": "Encounter.meta.versionId",
        "case_id": "Encounter.id",
        "hospital_id": "Encounter.serviceProvider",
    }
    events: list[dict[str, Any]] = []
    department, drg = known.department, known.drg_code
    if not known.admitted:
        scheme = _extension_code(encounter.extension, mapping.insurance_scheme_extension)
        scheme = scheme or hospital.insurance_scheme
        if scheme is None:
            raise Refused(
                Issue(
                    "Encounter.extension",
                    f"no insurance scheme: add the extension {mapping.insurance_scheme_extension}"
                    f" or set hospitals.{hospital_id}.insurance_scheme in the FHIR mapping",
                    "required",
                )
            )
        events.append(
            {
                **base,
                "event_id": event_id("enc", encounter_id, "admitted"),
                "type": "admitted",
                "occurred_at": admitted_at.isoformat(),
                "admitted_at": admitted_at.isoformat(),
                "department": first.department,
                "insurance_scheme": scheme,
                **({"drg_code": drg_code} if drg_code else {}),
            }
        )
        expressions |= {
            "admitted_at": "Encounter.period.start",
            "occurred_at": "Encounter.period.start",
            "insurance_scheme": "Encounter.extension",
        }
        department, drg = first.department, drg_code
    if current.department != department:
        moved_at = current.since or last_updated
        if moved_at is None:
            raise Refused(
                Issue(
                    f"{current.where}.period.start",
                    "needed to date the transfer (or meta.lastUpdated)",
                    "required",
                )
            )
        suffix = version or short_hash(current.department, moved_at.isoformat())
        events.append(
            {
                **base,
                "event_id": event_id("enc", encounter_id, "transfer", suffix),
                "type": "transferred",
                "occurred_at": moved_at.isoformat(),
                "department": current.department,
            }
        )
    if drg_code and drg_code != drg:
        if last_updated is None:
            raise Refused(
                Issue("Encounter.meta.lastUpdated", "needed to date the DRG change", "required")
            )
        suffix = version or short_hash(drg_code, last_updated.isoformat())
        events.append(
            {
                **base,
                "event_id": event_id("enc", encounter_id, "drg", suffix),
                "type": "drg_assigned",
                "occurred_at": last_updated.isoformat(),
                "drg_code": drg_code,
            }
        )
    if drg_where:
        expressions["drg_code"] = drg_where
    expressions["department"] = current.where
    ended = moment(period.end if period else None, zone)
    if status == "finished" and not known.discharged:
        if ended is None:
            raise Refused(Issue("Encounter.period.end", "needed: a finished stay ends", "required"))
        discharge_id, recorded = event_id("enc", encounter_id, "discharged"), ended
        if known.reopened:
            suffix = version or short_hash("discharged", ended.isoformat())
            discharge_id = event_id("enc", encounter_id, "discharged", suffix)
            # dated when it was recorded: it must outrank the cancellation before it
            recorded = max(ended, last_updated) if last_updated is not None else ended
            if known.discharge_moment is not None and recorded <= known.discharge_moment:
                # the version the cancellation withdrew, sent again: nothing new
                return Translation(events, resource_location(encounter), expressions)
        events.append(
            {
                **base,
                "event_id": discharge_id,
                "type": "discharged",
                "occurred_at": recorded.isoformat(),
                "discharged_at": ended.isoformat(),
            }
        )
        expressions["discharged_at"] = "Encounter.period.end"
    elif status != "finished" and known.discharged and ended is None:
        # the stay goes on: the discharge on record was entered by mistake (unless this
        # is an older version of the Encounter, from before the discharge: nothing new)
        if last_updated is None:
            raise Refused(
                Issue(
                    "Encounter.meta.lastUpdated",
                    "needed to date the cancelled discharge (the case is discharged and this"
                    " Encounter is not finished)",
                    "required",
                )
            )
        suffix = version or short_hash("discharge_cancelled", last_updated.isoformat())
        if known.discharge_moment is not None and last_updated <= known.discharge_moment:
            return Translation(events, resource_location(encounter), expressions)
        events.append(
            {
                **base,
                "event_id": event_id("enc", encounter_id, "discharge-cancelled", suffix),
                "type": "discharge_cancelled",
                "occurred_at": last_updated.isoformat(),
            }
        )
        expressions["occurred_at"] = "Encounter.meta.lastUpdated"
    return Translation(events, resource_location(encounter), expressions)


@dataclass(frozen=True, slots=True)
class _Placement:
    department: str
    since: datetime | None
    where: str  # the element that named the department


def _departments(
    encounter: Encounter, hospital_id: str, mapping: FhirMapping, zone: tzinfo
) -> tuple[_Placement, _Placement]:
    """The department the stay began in and the one it is in now: from the locations
    (ordered by period.start; the current one is the active one, else the latest),
    else the serviceType, else the hospital's default department."""
    hospital = mapping.hospital(hospital_id)
    placed: list[tuple[int, _Placement, str | None]] = []
    unmapped: list[str] = []
    for index, stay in enumerate(encounter.location or []):
        location_id = reference_id(stay.location, "Location")
        where = f"Encounter.location[{index}].location"
        if location_id is None or location_id not in hospital.locations:
            unmapped.append(f"{where} ({stay.location.reference})")
            continue
        since = moment(stay.period.start if stay.period else None, zone)
        placement = _Placement(hospital.locations[location_id], since, where)
        placed.append((index, placement, str(stay.status) if stay.status else None))
    if placed:
        ordered = sorted(
            placed, key=lambda item: (item[1].since is None, item[1].since or 0, item[0])
        )
        active = [item for item in ordered if item[2] == "active"]
        current = (active or ordered)[-1][1]
        return ordered[0][1], current
    service = _service_department(encounter, hospital.service_types)
    if service is not None:
        return service, service
    if hospital.department:
        fallback = _Placement(hospital.department, None, "Encounter.location")
        return fallback, fallback
    reason = (
        f"no department: {', '.join(unmapped)} not mapped in hospitals.{hospital_id}.locations"
        if unmapped
        else "no department: name a location or serviceType, or set a default department"
        f" for {hospital_id} in the FHIR mapping"
    )
    raise Refused(Issue("Encounter.location", reason, "required"))


def _service_department(encounter: Encounter, service_types: dict[str, str]) -> _Placement | None:
    concept = encounter.serviceType
    for index, coding in enumerate((concept.coding or []) if concept else []):
        if coding.code and str(coding.code) in service_types:
            return _Placement(
                service_types[str(coding.code)], None, f"Encounter.serviceType.coding[{index}].code"
            )
    return None


def _drg(encounter: Encounter, mapping: FhirMapping) -> tuple[str | None, str | None]:
    """The working DRG: the DRG extension, else a diagnosis whose condition identifier
    is of one of the mapping's DRG systems."""
    code = _extension_code(encounter.extension, mapping.drg_extension)
    if code:
        return code, "Encounter.extension"
    for index, diagnosis in enumerate(encounter.diagnosis or []):
        identifier = diagnosis.condition.identifier if diagnosis.condition else None
        if identifier is not None and identifier.system in mapping.drg_systems and identifier.value:
            return str(identifier.value), f"Encounter.diagnosis[{index}].condition.identifier.value"
    return None, None


def after(known: KnownCase, events: list[dict[str, Any]]) -> KnownCase:
    """The case as known once `events` are recorded (for the next entry of a Bundle)."""
    for event in events:
        kind = event["type"]
        if kind == "admitted":
            known = replace(
                known,
                admitted=True,
                department=event["department"],
                drg_code=event.get("drg_code") or known.drg_code,
            )
        elif kind == "transferred":
            known = replace(known, department=event["department"])
        elif kind == "drg_assigned":
            known = replace(known, drg_code=event["drg_code"])
        elif kind == "discharged":
            known = replace(
                known,
                discharged=True,
                discharge_moment=datetime.fromisoformat(event["occurred_at"]),
            )
        elif kind == "discharge_cancelled":
            known = replace(
                known,
                discharged=False,
                reopened=True,
                discharge_moment=datetime.fromisoformat(event["occurred_at"]),
            )
    return known


# ---- ChargeItem ----


def case_of_charge(item: ChargeItem, encounter_ids: dict[str, str]) -> str:
    """The case a ChargeItem belongs to: the Encounter its context names (by reference,
    or by the fullUrl of an Encounter in the same Bundle)."""
    context = item.context
    reference = context.reference if context is not None else None
    if reference and str(reference) in encounter_ids:
        return encounter_ids[str(reference)]
    case_id = reference_id(context, "Encounter")
    if case_id is None:
        raise Refused(
            Issue(
                "ChargeItem.context",
                "needed: the Encounter (Encounter/{id}) whose case the charge belongs to",
                "required",
            )
        )
    return case_id


def charge_events(
    item: ChargeItem,
    *,
    case: CaseRef,
    known: KnownCase,
    original: dict[str, Any] | None,
    mapping: FhirMapping,
    zone: tzinfo,
    charge_book: ChargeBook,
) -> Translation:
    """The charge a billable ChargeItem is, or the credit that withdraws it (module doc)."""
    item_id = _require_id(item)
    status = str(item.status)
    charge_id = event_id("ci", item_id)
    if status == "entered-in-error":
        return _reversal(item, charge_id=charge_id, original=original, zone=zone)
    if status not in CHARGED_STATUSES:
        raise Refused(
            Issue(
                "ChargeItem.status",
                f"{status}: only billable and billed items are charged (entered-in-error"
                " withdraws a charge)",
                "business-rule",
            )
        )
    coding_index, coding = _item_coding(item, mapping)
    code_where = f"ChargeItem.code.coding[{coding_index}]"
    quantity = _quantity(item)
    unit_price, amount, price_where = _price(item, quantity, mapping)
    occurred_at, time_where = _charge_time(item, zone)
    department, department_where = _charge_department(item, case.hospital_id, known, mapping)
    category, notes = _category(
        coding,
        code_where,
        hospital_id=case.hospital_id,
        day=occurred_at.astimezone(zone).date(),
        mapping=mapping,
        charge_book=charge_book,
    )
    event: dict[str, Any] = {
        "event_id": charge_id,
        "type": "charge",
        "hospital_id": case.hospital_id,
        "case_id": case.case_id,
        "occurred_at": occurred_at.isoformat(),
        "department": department,
        "item_code": str(coding.code),
        "item_name": str(coding.display or (item.code.text if item.code else None) or coding.code),
        "category": category.value,
        "quantity": money_text(quantity),
        "unit_price": money_text(unit_price),
        "amount": money_text(amount),
    }
    ordered_by, ordered_where = _orderer(item)
    if ordered_by:
        event["ordered_by"] = ordered_by
    order_id = next(
        (
            reference.reference.split("/")[-1]
            for reference in item.service or []
            if reference.reference
        ),
        None,
    )
    if order_id:
        event["order_id"] = order_id
    expressions = {
        "event_id": "ChargeItem.id",
        "case_id": "ChargeItem.context",
        "hospital_id": "ChargeItem.meta.tag",
        "occurred_at": time_where,
        "department": department_where,
        "item_code": f"{code_where}.code",
        "item_name": f"{code_where}.display",
        "quantity": "ChargeItem.quantity.value",
        "unit_price": price_where,
        "amount": price_where,
        "ordered_by": ordered_where,
        "order_id": "ChargeItem.service",
    }
    return Translation([event], resource_location(item), expressions, notes)


def _category(
    coding: Any,
    code_where: str,
    *,
    hospital_id: str,
    day: date,
    mapping: FhirMapping,
    charge_book: ChargeBook,
) -> tuple[Category, list[Issue]]:
    """The mapping's category for the coding's system, else the item's in the
    chargemaster in force for the hospital on `day`, else `other` (with a note)."""
    system, code = str(coding.system), str(coding.code)
    if system in mapping.category_systems:
        return mapping.category_systems[system], []
    listed = charge_book.category_of(hospital_id, code, day)
    if listed is not None:
        return Category(listed), []
    note = Issue(
        f"{code_where}.code",
        f"item {code} (system {coding.system or 'none'}) is in neither the mapping's"
        f" category_systems nor the chargemaster in force for {hospital_id} on"
        f" {day.isoformat()}: counted as {Category.OTHER.value}",
        "informational",
        "warning",
    )
    return Category.OTHER, [note]


def _reversal(
    item: ChargeItem, *, charge_id: str, original: dict[str, Any] | None, zone: tzinfo
) -> Translation:
    if original is None or original.get("type") != "charge":
        raise Refused(
            Issue(
                "ChargeItem.status",
                f"entered-in-error, but the charge it withdraws ({charge_id}) was never"
                " recorded: nothing to reverse",
                "not-found",
            )
        )
    # dated when the error was recorded, else at the charge itself: never "now", so a
    # resend of the same ChargeItem is recognised as the same credit
    noted_at = moment(item.meta.lastUpdated if item.meta else None, zone)
    credit = {name: original[name] for name in REVERSED_FIELDS if name in original}
    credit |= {
        "event_id": event_id("ci", str(item.id), "reversal"),
        "type": "credit",
        "occurred_at": noted_at.isoformat() if noted_at else original["occurred_at"],
        "reverses_event_id": charge_id,
    }
    return Translation(
        [credit], resource_location(item), {"occurred_at": "ChargeItem.meta.lastUpdated"}
    )


def _item_coding(item: ChargeItem, mapping: FhirMapping) -> tuple[int, Any]:
    """The coding that names the item: the first of a system the mapping categorises,
    else the first with a code."""
    codings = [
        (index, coding)
        for index, coding in enumerate((item.code.coding or []) if item.code else [])
        if coding.code
    ]
    if not codings:
        raise Refused(
            Issue("ChargeItem.code.coding", "needed: a coded item (system and code)", "required")
        )
    for index, coding in codings:
        if str(coding.system) in mapping.category_systems:
            return index, coding
    return codings[0]


def _quantity(item: ChargeItem) -> Decimal:
    """quantity.value; a ChargeItem without one is one unit."""
    value = item.quantity.value if item.quantity is not None else None
    quantity = Decimal(1) if value is None else Decimal(value)
    if not quantity > 0:
        raise Refused(Issue("ChargeItem.quantity.value", "must be greater than zero", "value"))
    return quantity


def _money(money: Any, where: str, currency: str) -> Decimal | None:
    if money is None:
        return None
    if money.currency and money.currency != currency:
        raise Refused(
            Issue(
                f"{where}.currency",
                f"{money.currency}: amounts are taken in {currency} only",
                "value",
            )
        )
    if money.value is None:
        raise Refused(Issue(f"{where}.value", "needed: the amount", "required"))
    return Decimal(money.value)


def _price(
    item: ChargeItem, quantity: Decimal, mapping: FhirMapping
) -> tuple[Decimal, Decimal, str]:
    """(unit price, amount, where they came from), exact: priceOverride is the line's
    total; the unit-price extension (valueMoney) is the price of one unit."""
    total = _money(item.priceOverride, "ChargeItem.priceOverride", mapping.currency)
    unit = _money(
        next(
            (e.valueMoney for e in item.extension or [] if e.url == mapping.unit_price_extension),
            None,
        ),
        "ChargeItem.extension.valueMoney",
        mapping.currency,
    )
    try:
        if unit is not None:
            amount = (quantity * unit).quantize(CENT, rounding=ROUND_HALF_UP)
            if total is not None and total != amount:
                raise Refused(
                    Issue(
                        "ChargeItem.priceOverride.value",
                        f"{money_text(total)} != quantity x unit price ({money_text(quantity)}"
                        f" x {money_text(unit)} = {money_text(amount)})",
                        "value",
                    )
                )
            return unit, amount, "ChargeItem.extension.valueMoney.value"
        if total is None:
            raise Refused(
                Issue(
                    "ChargeItem.priceOverride",
                    "needed: the line's amount (priceOverride), or a unit price in the"
                    f" extension {mapping.unit_price_extension}",
                    "required",
                )
            )
        unit_price = (total / quantity).quantize(UNIT_PLACES, rounding=ROUND_HALF_UP)
        exact = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP) == total
    except InvalidOperation:
        raise Refused(
            Issue("ChargeItem.priceOverride.value", "too large to be an amount", "value")
        ) from None
    if not exact:
        raise Refused(
            Issue(
                "ChargeItem.priceOverride.value",
                f"{money_text(total)} is not {money_text(quantity)} x any unit price of at"
                " most 4 decimal places: send the unit price in the extension"
                f" {mapping.unit_price_extension}",
                "value",
            )
        )
    return unit_price, total, "ChargeItem.priceOverride.value"


def _charge_time(item: ChargeItem, zone: tzinfo) -> tuple[datetime, str]:
    """When the service was given (occurrence), else when it was entered."""
    candidates = (
        (item.occurrenceDateTime, "ChargeItem.occurrenceDateTime"),
        (
            item.occurrencePeriod.start if item.occurrencePeriod else None,
            "ChargeItem.occurrencePeriod.start",
        ),
        (item.enteredDate, "ChargeItem.enteredDate"),
    )
    for value, where in candidates:
        at = moment(value, zone)
        if at is not None:
            return at, where
    raise Refused(
        Issue(
            "ChargeItem.occurrenceDateTime",
            "needed: when the service was given (occurrence[x]) or entered (enteredDate)",
            "required",
        )
    )


def _charge_department(
    item: ChargeItem, hospital_id: str, known: KnownCase, mapping: FhirMapping
) -> tuple[str, str]:
    """The ordering department: requestingOrganization, costCenter or
    performingOrganization mapped to a department, else the case's current one."""
    hospital = mapping.hospital(hospital_id)
    for name in ("requestingOrganization", "costCenter", "performingOrganization"):
        organization = reference_id(getattr(item, name), "Organization")
        if organization and organization in hospital.organizations:
            return hospital.organizations[organization], f"ChargeItem.{name}"
    department = known.department or hospital.department
    if department is None:
        raise Refused(
            Issue(
                "ChargeItem.requestingOrganization",
                f"no department: map the ordering Organization in hospitals.{hospital_id}"
                ".organizations, or send the Encounter first",
                "required",
            )
        )
    return department, "ChargeItem.context"


def _orderer(item: ChargeItem) -> tuple[str | None, str]:
    for index, performer in enumerate(item.performer or []):
        reference = performer.actor.reference if performer.actor else None
        if reference:
            return str(reference).split("/")[-1], f"ChargeItem.performer[{index}].actor"
    if item.enterer is not None and item.enterer.reference:
        return str(item.enterer.reference).split("/")[-1], "ChargeItem.enterer"
    return None, "ChargeItem.performer"
