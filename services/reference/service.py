"""DRG catalogue versions: import, lookup, and the price book the worker prices with."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.pricing import Catalogue, DrgGroup, PriceBook, Thresholds
from services.reference.exceptions import GroupNotInForce
from services.reference.schemas import CatalogueIn, CatalogueOut, GroupIn, GroupOut
from services.storage.models import (
    CatalogueRecord,
    DrgGroupRecord,
    ReferenceVersion,
    ThresholdRecord,
)

CSV_COLUMNS = ("drg_code", "name", "weight", "avg_los_days", "standard_cost")
SAMPLE_CSV = Path(__file__).parent / "sample" / "chs_drg_sample.csv"
SAMPLE_NAME = "SAMPLE CHS-DRG-style catalogue (illustrative, not for payment)"
SAMPLE_BASE_RATES = {"employee": "12252.70", "resident": "9649.24"}
SAMPLE_EFFECTIVE_FROM = date(2026, 1, 1)
CENT = Decimal("0.01")


def groups_from_csv(text: str) -> list[GroupIn]:
    """Parse `drg_code,name,weight,avg_los_days,standard_cost` rows (header required)."""
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
                )
            )
        except ValueError as error:
            raise ValueError(f"CSV line {line}: {error}") from None
    return groups


async def create(*, db_session: AsyncSession, catalogue_in: CatalogueIn) -> CatalogueOut:
    """Store a catalogue version and bump the reference version so workers reload."""
    record = CatalogueRecord(
        name=catalogue_in.name,
        effective_from=catalogue_in.effective_from,
        hospital_id=catalogue_in.hospital_id,
        base_rates={scheme: str(rate) for scheme, rate in catalogue_in.base_rates.items()},
        created_at=datetime.now(UTC),
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
        )
        for group in catalogue_in.groups
    )
    await bump_reference_version(db_session=db_session)
    return CatalogueOut(
        catalogue_id=record.id,
        name=record.name,
        effective_from=record.effective_from,
        hospital_id=record.hospital_id,
        base_rates=record.base_rates,
        groups=len(catalogue_in.groups),
    )


async def bump_reference_version(*, db_session: AsyncSession) -> None:
    await db_session.execute(
        update(ReferenceVersion)
        .where(ReferenceVersion.id == 1)
        .values(version=ReferenceVersion.version + 1)
    )


async def has_any(*, db_session: AsyncSession) -> bool:
    return (await db_session.scalar(select(CatalogueRecord.id).limit(1))) is not None


async def get_current_group(
    *,
    db_session: AsyncSession,
    drg_code: str,
    hospital_id: str | None = None,
    on: date | None = None,
) -> GroupOut:
    price_book = await load_price_book(db_session=db_session)
    on = on or datetime.now(UTC).date()
    catalogue = price_book.catalogue_for(hospital_id or "*", on)
    group = None if catalogue is None else catalogue.groups.get(drg_code)
    if catalogue is None or group is None:
        raise GroupNotInForce(f"DRG {drg_code} is not in the catalogue in force on {on}")
    costs = {
        scheme: str(group.standard_cost or (group.weight * rate).quantize(CENT, ROUND_HALF_UP))
        for scheme, rate in catalogue.base_rates.items()
    }
    return GroupOut(
        catalogue_id=catalogue.catalogue_id,
        catalogue_name=catalogue.name,
        effective_from=catalogue.effective_from,
        drg_code=group.drg_code,
        name=group.name,
        weight=str(group.weight),
        avg_los_days=None if group.avg_los_days is None else str(group.avg_los_days),
        standard_cost=None if group.standard_cost is None else str(group.standard_cost),
        standard_costs=costs,
    )


async def reference_version(*, db_session: AsyncSession) -> int:
    version = await db_session.scalar(
        select(ReferenceVersion.version).where(ReferenceVersion.id == 1)
    )
    return int(version or 0)


async def load_price_book(*, db_session: AsyncSession) -> PriceBook:
    """Every catalogue version and threshold, as the immutable snapshot the core uses."""
    version = await reference_version(db_session=db_session)
    catalogues = []
    for record in (await db_session.scalars(select(CatalogueRecord))).all():
        rows = await db_session.scalars(
            select(DrgGroupRecord).where(DrgGroupRecord.catalogue_id == record.id)
        )
        catalogues.append(
            Catalogue(
                catalogue_id=record.id,
                name=record.name,
                effective_from=record.effective_from,
                base_rates={scheme: Decimal(rate) for scheme, rate in record.base_rates.items()},
                groups={
                    row.drg_code: DrgGroup(
                        row.drg_code, row.name, row.weight, row.avg_los_days, row.standard_cost
                    )
                    for row in rows
                },
                hospital_id=record.hospital_id,
            )
        )
    thresholds = {
        (row.hospital_id, row.drg_code): Thresholds(row.blue, row.yellow, row.red)
        for row in (await db_session.scalars(select(ThresholdRecord))).all()
    }
    return PriceBook(version=version, catalogues=tuple(catalogues), thresholds=thresholds)


def sample_catalogue() -> CatalogueIn:
    return CatalogueIn(
        name=SAMPLE_NAME,
        effective_from=SAMPLE_EFFECTIVE_FROM,
        base_rates=SAMPLE_BASE_RATES,
        groups=groups_from_csv(SAMPLE_CSV.read_text(encoding="utf-8")),
    )
