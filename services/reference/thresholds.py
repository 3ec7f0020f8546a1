"""Alert thresholds per hospital and DRG ("*" for any): set, list, remove.

The most specific row applies (services/casecost/pricing.py `thresholds_for`); where
none does, the built-in default (blue 0.90, yellow 0.95, red 1.00). Every change bumps
the reference version, so the workers re-level their open cases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.pricing import DEFAULT_THRESHOLDS
from services.reference.exceptions import UnknownThresholds
from services.reference.schemas import ThresholdList, ThresholdsIn, ThresholdsOut
from services.reference.service import Visible, bump_reference_version
from services.storage.engine import upsert
from services.storage.models import ThresholdRecord
from services.storage.pagination import decode_cursor, encode_cursor

ANY = "*"
PLACES = Decimal("0.0001")  # as stored (alert_thresholds: NUMERIC(6, 4))


def _fraction(value: Decimal) -> str:
    return str(value.quantize(PLACES))


DEFAULT = ThresholdsOut(
    hospital_id=ANY,
    drg_code=ANY,
    blue=_fraction(DEFAULT_THRESHOLDS.blue),
    yellow=_fraction(DEFAULT_THRESHOLDS.yellow),
    red=_fraction(DEFAULT_THRESHOLDS.red),
    updated_at=None,
)


async def set_thresholds(*, db_session: AsyncSession, thresholds: ThresholdsIn) -> ThresholdsOut:
    """Store (or replace) the thresholds of a hospital and DRG."""
    now = datetime.now(UTC)
    statement = upsert(
        db_session.get_bind().dialect.name,
        ThresholdRecord,
        ["hospital_id", "drg_code"],
        ["blue", "yellow", "red", "updated_at"],
    ).values(
        hospital_id=thresholds.hospital_id,
        drg_code=thresholds.drg_code,
        blue=thresholds.blue,
        yellow=thresholds.yellow,
        red=thresholds.red,
        updated_at=now,
    )
    await db_session.execute(statement)
    await bump_reference_version(db_session=db_session)
    return ThresholdsOut(
        hospital_id=thresholds.hospital_id,
        drg_code=thresholds.drg_code,
        blue=_fraction(thresholds.blue),
        yellow=_fraction(thresholds.yellow),
        red=_fraction(thresholds.red),
        updated_at=now,
    )


async def list_thresholds(
    *,
    db_session: AsyncSession,
    hospitals: Visible,
    hospital_id: str | None = None,
    drg_code: str | None = None,
    limit: int = 200,
    cursor: str | None = None,
) -> ThresholdList:
    """Rows by hospital and DRG; those for any hospital ("*") are visible to everyone."""
    statement = select(ThresholdRecord)
    if hospitals is not None:
        statement = statement.where(ThresholdRecord.hospital_id.in_(sorted({ANY, *hospitals})))
    if hospital_id is not None:
        statement = statement.where(ThresholdRecord.hospital_id == hospital_id)
    if drg_code is not None:
        statement = statement.where(ThresholdRecord.drg_code == drg_code)
    after = decode_cursor(cursor, 2)
    if after is not None:
        last_hospital, last_drg = str(after[0]), str(after[1])
        statement = statement.where(
            (ThresholdRecord.hospital_id > last_hospital)
            | (
                (ThresholdRecord.hospital_id == last_hospital)
                & (ThresholdRecord.drg_code > last_drg)
            )
        )
    rows = list(
        await db_session.scalars(
            statement.order_by(ThresholdRecord.hospital_id, ThresholdRecord.drg_code).limit(
                limit + 1
            )
        )
    )
    page = rows[:limit]
    return ThresholdList(
        items=[_out(row) for row in page],
        next_cursor=(
            encode_cursor([page[-1].hospital_id, page[-1].drg_code]) if len(rows) > limit else None
        ),
        default=DEFAULT,
    )


async def remove_thresholds(
    *, db_session: AsyncSession, hospital_id: str, drg_code: str
) -> ThresholdsOut:
    """Remove a row: the next most specific one (or the default) applies again."""
    row = await db_session.scalar(
        select(ThresholdRecord).where(
            ThresholdRecord.hospital_id == hospital_id, ThresholdRecord.drg_code == drg_code
        )
    )
    if row is None:
        raise UnknownThresholds(
            f"no thresholds are set for hospital_id {hospital_id!r} and drg_code {drg_code!r}"
        )
    removed = _out(row)
    await db_session.execute(
        delete(ThresholdRecord).where(
            ThresholdRecord.hospital_id == hospital_id, ThresholdRecord.drg_code == drg_code
        )
    )
    await bump_reference_version(db_session=db_session)
    return removed


def _out(row: ThresholdRecord) -> ThresholdsOut:
    return ThresholdsOut(
        hospital_id=row.hospital_id,
        drg_code=row.drg_code,
        blue=_fraction(row.blue),
        yellow=_fraction(row.yellow),
        red=_fraction(row.red),
        updated_at=row.updated_at,
    )
