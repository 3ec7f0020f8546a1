"""DRG catalogue versions: import, list, view, withdraw, and the price book workers use.

Catalogues are never deleted. Each import stores a new version; a withdrawn one keeps
its row and groups but prices nothing. Every change bumps the reference version, and
each worker then prices its open cases again against the new price book.

"Today" is always the hospital's local day, passed in by the caller (the route), which
knows the hospital's time zone and whose clock a test can set.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.pricing import Catalogue, DrgGroup, PriceBook, Thresholds, standard_cost
from services.reference.exceptions import AlreadyWithdrawn, GroupNotInForce, UnknownCatalogue
from services.reference.impact import Impact, PricingKey, impact_of
from services.reference.plan import PLANNED_ID, plan_import, scope_of
from services.reference.schemas import (
    CatalogueDetail,
    CatalogueIn,
    CatalogueList,
    CatalogueOut,
    CatalogueRef,
    GroupChangesOut,
    GroupIn,
    GroupOut,
    GroupPage,
    GroupRow,
    ImportReport,
    OpenCasesOut,
    WithdrawalReport,
)
from services.storage.models import (
    CaseRecord,
    CatalogueRecord,
    DrgGroupRecord,
    ReferenceVersion,
    ThresholdRecord,
)
from services.storage.pagination import decode_cursor, decode_int_cursor, encode_cursor

CSV_COLUMNS = (
    "drg_code",
    "name",
    "weight",
    "avg_los_days",
    "standard_cost",
    "name_en",
    "mean_cost",
    "high_ratio",
    "low_ratio",
)
SAMPLE_CSV = Path(__file__).parent / "sample" / "chs_drg_sample.csv"
SAMPLE_NAME = "SAMPLE CHS-DRG-style catalogue (illustrative, not for payment)"
SAMPLE_BASE_RATES = {"employee": "12252.70", "resident": "9649.24"}
SAMPLE_EFFECTIVE_FROM = date(2026, 1, 1)
# Who can see what: a set of hospital ids, or None for every hospital. A catalogue for
# every hospital is visible to all; one for a hospital only within that hospital's scope.
Visible = frozenset[str] | None
VisibleSelect = TypeVar("VisibleSelect", bound=Select[Any])


def groups_from_csv(text: str) -> list[GroupIn]:
    """Parse `drg_code,name,weight,avg_los_days,standard_cost` rows, with optional
    `name_en`, `mean_cost`, `high_ratio` and `low_ratio` columns (header required; columns
    in any order)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in CSV_COLUMNS[:3] if column not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"CSV header lacks {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
    groups = []
    for line, row in enumerate(reader, start=2):
        try:
            groups.append(
                GroupIn(
                    drg_code=row["drg_code"],
                    name=row["name"],
                    weight=row["weight"],
                    avg_los_days=row.get("avg_los_days") or None,
                    standard_cost=row.get("standard_cost") or None,
                    name_en=row.get("name_en") or None,
                    mean_cost=row.get("mean_cost") or None,
                    high_ratio=row.get("high_ratio") or None,
                    low_ratio=row.get("low_ratio") or None,
                )
            )
        except ValueError as error:
            raise ValueError(f"CSV line {line}: {error}") from None
    return groups


def sample_catalogue() -> CatalogueIn:
    return CatalogueIn(
        name=SAMPLE_NAME,
        effective_from=SAMPLE_EFFECTIVE_FROM,
        base_rates=SAMPLE_BASE_RATES,
        groups=groups_from_csv(SAMPLE_CSV.read_text(encoding="utf-8")),
    )


# --- the price book ------------------------------------------------------------------

# how long a process prices with the price book and chargemaster it keeps before asking
# the database whether a newer version was stored: by another process (the worker checks
# every 2 s too); a process forgets them the moment it stores one itself
VERSION_TRUST_SECONDS = 1.0


async def reference_version(*, db_session: AsyncSession) -> int:
    version = await db_session.scalar(
        select(ReferenceVersion.version).where(ReferenceVersion.id == 1)
    )
    return int(version or 0)


async def bump_reference_version(*, db_session: AsyncSession) -> None:
    await db_session.execute(
        update(ReferenceVersion)
        .where(ReferenceVersion.id == 1)
        .values(version=ReferenceVersion.version + 1)
    )


async def load_price_book(*, db_session: AsyncSession, zone: tzinfo | None = None) -> PriceBook:
    """Every catalogue in force at some date (not withdrawn) and every threshold, as the
    immutable snapshot the core prices with; `zone` is the hospitals' time zone (the
    product's default without it), which decides a case's pricing day."""
    version = await reference_version(db_session=db_session)
    records = (
        await db_session.scalars(
            select(CatalogueRecord).where(CatalogueRecord.withdrawn_at.is_(None))
        )
    ).all()
    groups: dict[int, dict[str, DrgGroup]] = {record.id: {} for record in records}
    rows = await db_session.scalars(
        select(DrgGroupRecord)
        .join(CatalogueRecord, CatalogueRecord.id == DrgGroupRecord.catalogue_id)
        .where(CatalogueRecord.withdrawn_at.is_(None))
    )
    for row in rows:
        groups[row.catalogue_id][row.drg_code] = _group(row)
    thresholds = {
        (row.hospital_id, row.drg_code): Thresholds(row.blue, row.yellow, row.red)
        for row in (await db_session.scalars(select(ThresholdRecord))).all()
    }
    book = PriceBook(
        version=version,
        catalogues=tuple(_catalogue(record, groups[record.id]) for record in records),
        thresholds=thresholds,
    )
    return book if zone is None else replace(book, zone=zone)


def _catalogue(record: CatalogueRecord, groups: dict[str, DrgGroup]) -> Catalogue:
    return Catalogue(
        catalogue_id=record.id,
        name=record.name,
        effective_from=record.effective_from,
        base_rates={scheme: Decimal(rate) for scheme, rate in record.base_rates.items()},
        groups=groups,
        hospital_id=record.hospital_id,
        sample=record.sample,
    )


# --- import ----------------------------------------------------------------------------


async def import_catalogue(
    *,
    db_session: AsyncSession,
    catalogue_in: CatalogueIn,
    today: date,
    zone: tzinfo,
    imported_by: str,
) -> ImportReport:
    """Plan an import against the catalogue in force, report what it does to the open
    cases, and store it (unless `dry_run`); CatalogueRefused if it would price wrongly."""
    before = await load_price_book(db_session=db_session, zone=zone)
    plan = plan_import(before, catalogue_in)
    after = replace(before, catalogues=(*before.catalogues, plan.catalogue))
    impact = await _impact(
        db_session=db_session, before=before, after=after, hospital_id=catalogue_in.hospital_id
    )
    stored_id: int | None = None
    if not catalogue_in.dry_run:
        stored_id = await _store(
            db_session=db_session,
            catalogue=plan.catalogue,
            import_mode=catalogue_in.mode,
            based_on_id=None if plan.based_on is None else plan.based_on.catalogue_id,
            created_by=imported_by,
        )
    scope = scope_of(catalogue_in.hospital_id)
    return ImportReport(
        dry_run=catalogue_in.dry_run,
        catalogue_id=stored_id,
        name=plan.catalogue.name,
        effective_from=plan.catalogue.effective_from,
        hospital_id=plan.catalogue.hospital_id,
        mode=catalogue_in.mode,
        base_rates={scheme: str(rate) for scheme, rate in plan.catalogue.base_rates.items()},
        group_count=len(plan.catalogue.groups),
        based_on=None if plan.based_on is None else _ref(plan.based_on, stored_id),
        changes=GroupChangesOut.model_validate(plan.changes, from_attributes=True),
        today=today,
        in_force_today=_in_force_ref(after, scope, today, stored_id),
        impact=OpenCasesOut.model_validate(impact, from_attributes=True),
    )


async def load_sample(*, db_session: AsyncSession) -> bool:
    """Store the sample catalogue, marked as such, if the database has no catalogue at all
    (a withdrawn one counts: whoever withdrew the sample does not want it back)."""
    if await db_session.scalar(select(CatalogueRecord.id).limit(1)) is not None:
        return False
    plan = plan_import(PriceBook(), sample_catalogue())
    await _store(
        db_session=db_session,
        catalogue=plan.catalogue,
        import_mode="full",
        based_on_id=None,
        created_by="drgwatch (shipped sample)",
        sample=True,
    )
    return True


async def _store(
    *,
    db_session: AsyncSession,
    catalogue: Catalogue,
    import_mode: str,
    based_on_id: int | None,
    created_by: str,
    sample: bool = False,
) -> int:
    record = CatalogueRecord(
        name=catalogue.name,
        effective_from=catalogue.effective_from,
        hospital_id=catalogue.hospital_id,
        base_rates={scheme: str(rate) for scheme, rate in catalogue.base_rates.items()},
        created_at=datetime.now(UTC),
        sample=sample,
        import_mode=import_mode,
        based_on_id=based_on_id,
        created_by=created_by,
    )
    db_session.add(record)
    await db_session.flush()
    db_session.add_all(
        DrgGroupRecord(
            catalogue_id=record.id,
            drg_code=group.drg_code,
            name=group.name,
            weight=group.weight,
            avg_los_days=group.avg_los_days,
            standard_cost=group.standard_cost,
            name_en=group.name_en,
            mean_cost=group.mean_cost,
            high_ratio=group.high_ratio,
            low_ratio=group.low_ratio,
        )
        for group in catalogue.groups.values()
    )
    await bump_reference_version(db_session=db_session)
    return record.id


# --- what a change does to the open cases ------------------------------------------------


async def _impact(
    *, db_session: AsyncSession, before: PriceBook, after: PriceBook, hospital_id: str | None
) -> Impact:
    """The open cases of the catalogue's hospital (or of every hospital) before and after."""
    statement = select(
        CaseRecord.hospital_id,
        CaseRecord.drg_code,
        CaseRecord.insurance_scheme,
        CaseRecord.admitted_at,
        CaseRecord.last_event_at,
    ).where(CaseRecord.status == "open")
    if hospital_id is not None:
        statement = statement.where(CaseRecord.hospital_id == hospital_id)
    keys: Counter[PricingKey] = Counter()
    result = await db_session.stream(statement.execution_options(yield_per=5_000))
    async for partition in result.partitions():
        for hospital, drg_code, scheme, admitted_at, last_event_at in partition:
            moment = admitted_at or last_event_at
            day = None if moment is None else after.local_day(moment)
            keys[PricingKey(hospital, drg_code, scheme, day)] += 1
    return impact_of(before, after, keys)


def _ref(catalogue: Catalogue, stored_id: int | None) -> CatalogueRef:
    planned = catalogue.catalogue_id == PLANNED_ID
    return CatalogueRef(
        catalogue_id=stored_id if planned else catalogue.catalogue_id,
        name=catalogue.name,
        effective_from=catalogue.effective_from,
        hospital_id=catalogue.hospital_id,
        sample=catalogue.sample,
    )


def _in_force_ref(
    price_book: PriceBook, scope: str, today: date, stored_id: int | None = None
) -> CatalogueRef | None:
    catalogue = price_book.catalogue_for(scope, today)
    return None if catalogue is None else _ref(catalogue, stored_id)


# --- list, view, withdraw --------------------------------------------------------------


async def list_catalogues(
    *,
    db_session: AsyncSession,
    today: date,
    hospitals: Visible,
    hospital_id: str | None = None,
    withdrawn: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> CatalogueList:
    """Catalogues newest first; `hospital_id`: those that apply to it ("*": those for every
    hospital); `withdrawn`: only withdrawn ones (True) or only the others (False)."""
    statement = _visible(select(CatalogueRecord), hospitals)
    if hospital_id == "*":
        statement = statement.where(CatalogueRecord.hospital_id.is_(None))
    elif hospital_id is not None:
        statement = statement.where(
            CatalogueRecord.hospital_id.is_(None) | (CatalogueRecord.hospital_id == hospital_id)
        )
    if withdrawn is not None:
        column = CatalogueRecord.withdrawn_at
        statement = statement.where(column.is_not(None) if withdrawn else column.is_(None))
    after = decode_int_cursor(cursor)
    if after is not None:
        statement = statement.where(CatalogueRecord.id < after)
    records = list(
        await db_session.scalars(statement.order_by(CatalogueRecord.id.desc()).limit(limit + 1))
    )
    page = records[:limit]
    counts = await _group_counts(db_session=db_session, catalogue_ids=[r.id for r in page])
    in_force = await _in_force_ids(db_session=db_session, today=today)
    return CatalogueList(
        items=[_out(record, counts.get(record.id, 0), in_force) for record in page],
        next_cursor=encode_cursor([page[-1].id]) if len(records) > limit else None,
        today=today,
    )


async def get_catalogue(
    *,
    db_session: AsyncSession,
    catalogue_id: int,
    today: date,
    hospitals: Visible,
    limit: int = 500,
    cursor: str | None = None,
) -> CatalogueDetail:
    """A catalogue with a page of its groups (by code) and each group's standard per scheme."""
    record = await _record(db_session=db_session, catalogue_id=catalogue_id, hospitals=hospitals)
    after = decode_cursor(cursor, 1)
    statement = select(DrgGroupRecord).where(DrgGroupRecord.catalogue_id == record.id)
    if after is not None:
        statement = statement.where(DrgGroupRecord.drg_code > str(after[0]))
    rows = list(
        await db_session.scalars(statement.order_by(DrgGroupRecord.drg_code).limit(limit + 1))
    )
    rates = {scheme: Decimal(rate) for scheme, rate in record.base_rates.items()}
    counts = await _group_counts(db_session=db_session, catalogue_ids=[record.id])
    summary = _out(
        record, counts.get(record.id, 0), await _in_force_ids(db_session=db_session, today=today)
    )
    return CatalogueDetail(
        **summary.model_dump(),
        today=today,
        groups=GroupPage(
            items=[_group_row(_group(row), rates) for row in rows[:limit]],
            next_cursor=encode_cursor([rows[limit - 1].drg_code]) if len(rows) > limit else None,
        ),
    )


async def get_current_catalogue(
    *,
    db_session: AsyncSession,
    today: date,
    hospital_id: str | None,
    hospitals: Visible,
    limit: int = 500,
    cursor: str | None = None,
) -> CatalogueDetail:
    """The catalogue that prices a hospital's cases admitted today (no `hospital_id`: the
    one for every hospital), as get_catalogue shows it."""
    catalogue = None
    if hospital_id is None or hospitals is None or hospital_id in hospitals:
        headers = await _headers(db_session=db_session)
        catalogue = headers.catalogue_for(scope_of(hospital_id), today)
    if catalogue is None:
        where = f" for hospital {hospital_id}" if hospital_id else ""
        raise UnknownCatalogue(f"no catalogue is in force on {today}{where}")
    return await get_catalogue(
        db_session=db_session,
        catalogue_id=catalogue.catalogue_id,
        today=today,
        hospitals=hospitals,
        limit=limit,
        cursor=cursor,
    )


async def withdraw(
    *,
    db_session: AsyncSession,
    catalogue_id: int,
    today: date,
    zone: tzinfo,
    hospitals: Visible,
    authorize: Callable[[str | None], None],
    withdrawn_by: str,
    reason: str | None,
    dry_run: bool,
) -> WithdrawalReport:
    """Take a catalogue out of force for good (its row and groups stay, as history), and
    report what that does to the open cases. `authorize` gets the catalogue's hospital
    (None: every hospital) and raises if the caller may not change its reference data."""
    record = await _record(
        db_session=db_session, catalogue_id=catalogue_id, hospitals=hospitals, lock=True
    )
    authorize(record.hospital_id)
    if record.withdrawn_at is not None:
        raise AlreadyWithdrawn(
            f"catalogue {record.id} was withdrawn on {record.withdrawn_at:%Y-%m-%d %H:%M} UTC"
            f" by {record.withdrawn_by}"
        )
    before = await load_price_book(db_session=db_session, zone=zone)
    remaining = tuple(c for c in before.catalogues if c.catalogue_id != record.id)
    after = replace(before, catalogues=remaining)
    impact = await _impact(
        db_session=db_session, before=before, after=after, hospital_id=record.hospital_id
    )
    if not dry_run:
        record.withdrawn_at = datetime.now(UTC)
        record.withdrawn_by = withdrawn_by
        record.withdrawn_reason = reason
        await db_session.flush()
        await bump_reference_version(db_session=db_session)
    counts = await _group_counts(db_session=db_session, catalogue_ids=[record.id])
    in_force = {c.catalogue_id for c in _in_force(after, today)}
    return WithdrawalReport(
        dry_run=dry_run,
        catalogue=_out(record, counts.get(record.id, 0), in_force),
        today=today,
        in_force_today=_in_force_ref(after, scope_of(record.hospital_id), today),
        impact=OpenCasesOut.model_validate(impact, from_attributes=True),
    )


async def get_current_group(
    *,
    db_session: AsyncSession,
    drg_code: str,
    hospital_id: str | None,
    on: date,
    hospitals: Visible,
) -> GroupOut:
    """A group of the catalogue in force on `on` for a hospital (or every hospital)."""
    price_book = await load_price_book(db_session=db_session)
    catalogue = None
    if hospital_id is None or hospitals is None or hospital_id in hospitals:
        catalogue = price_book.catalogue_for(scope_of(hospital_id), on)
    group = None if catalogue is None else catalogue.groups.get(drg_code)
    if catalogue is None or group is None:
        raise GroupNotInForce(f"DRG {drg_code} is not in the catalogue in force on {on}")
    return GroupOut(
        **_group_row(group, catalogue.base_rates).model_dump(),
        catalogue_id=catalogue.catalogue_id,
        catalogue_name=catalogue.name,
        effective_from=catalogue.effective_from,
        sample=catalogue.sample,
        on=on,
    )


async def _record(
    *, db_session: AsyncSession, catalogue_id: int, hospitals: Visible, lock: bool = False
) -> CatalogueRecord:
    statement = _visible(select(CatalogueRecord), hospitals).where(
        CatalogueRecord.id == catalogue_id
    )
    record = await db_session.scalar(statement.with_for_update() if lock else statement)
    if record is None:
        raise UnknownCatalogue(f"no catalogue {catalogue_id}")
    return record


def _visible(statement: VisibleSelect, hospitals: Visible) -> VisibleSelect:
    if hospitals is None:
        return statement
    return statement.where(
        CatalogueRecord.hospital_id.is_(None) | CatalogueRecord.hospital_id.in_(sorted(hospitals))
    )


async def _group_counts(*, db_session: AsyncSession, catalogue_ids: list[int]) -> dict[int, int]:
    if not catalogue_ids:
        return {}
    rows = await db_session.execute(
        select(DrgGroupRecord.catalogue_id, func.count())
        .where(DrgGroupRecord.catalogue_id.in_(catalogue_ids))
        .group_by(DrgGroupRecord.catalogue_id)
    )
    return {int(catalogue_id): int(count) for catalogue_id, count in rows.tuples()}


async def _headers(*, db_session: AsyncSession) -> PriceBook:
    """The catalogues in force at some date, without their groups: enough to rank them."""
    records = await db_session.scalars(
        select(CatalogueRecord).where(CatalogueRecord.withdrawn_at.is_(None))
    )
    return PriceBook(catalogues=tuple(_catalogue(record, {}) for record in records))


async def _in_force_ids(*, db_session: AsyncSession, today: date) -> set[int]:
    return {c.catalogue_id for c in _in_force(await _headers(db_session=db_session), today)}


def _in_force(price_book: PriceBook, today: date) -> Iterable[Catalogue]:
    """The catalogues that price cases admitted today, each for its own hospital (or for
    every hospital)."""
    scopes = {scope_of(catalogue.hospital_id) for catalogue in price_book.catalogues}
    for scope in scopes:
        catalogue = price_book.catalogue_for(scope, today)
        if catalogue is not None and scope_of(catalogue.hospital_id) == scope:
            yield catalogue


def _out(record: CatalogueRecord, group_count: int, in_force: set[int]) -> CatalogueOut:
    return CatalogueOut(
        catalogue_id=record.id,
        name=record.name,
        effective_from=record.effective_from,
        hospital_id=record.hospital_id,
        sample=record.sample,
        base_rates=record.base_rates,
        group_count=group_count,
        in_force_today=record.id in in_force,
        withdrawn=record.withdrawn_at is not None,
        withdrawn_at=record.withdrawn_at,
        withdrawn_by=record.withdrawn_by,
        withdrawn_reason=record.withdrawn_reason,
        import_mode=record.import_mode,
        based_on_id=record.based_on_id,
        created_at=record.created_at,
        created_by=record.created_by,
    )


def _group(row: DrgGroupRecord) -> DrgGroup:
    return DrgGroup(
        row.drg_code,
        row.name,
        row.weight,
        row.avg_los_days,
        row.standard_cost,
        name_en=row.name_en,
        mean_cost=row.mean_cost,
        high_ratio=row.high_ratio,
        low_ratio=row.low_ratio,
    )


def _group_row(group: DrgGroup, base_rates: dict[str, Decimal]) -> GroupRow:
    costs = {scheme: standard_cost(group, rate) for scheme, rate in base_rates.items()}
    return GroupRow(
        drg_code=group.drg_code,
        name=group.name,
        name_en=group.name_en,
        weight=str(group.weight),
        avg_los_days=None if group.avg_los_days is None else str(group.avg_los_days),
        standard_cost=None if group.standard_cost is None else str(group.standard_cost),
        standard_costs={scheme: str(cost) for scheme, cost in costs.items() if cost is not None},
        mean_cost=None if group.mean_cost is None else str(group.mean_cost),
        high_ratio=None if group.high_ratio is None else str(group.high_ratio),
        low_ratio=None if group.low_ratio is None else str(group.low_ratio),
    )
