"""Chargemaster versions: CSV reading, import, the charge book the API prices with, and
the reads (versions from the database; items from the charge book, no query).

Versions are never changed or deleted: each import stores a new one, and the one valid
on a day (`ChargeBook.in_force`) prices that day's pre-checks. The newest version's id
is the charge book's version, so a process that keeps the book knows, with one indexed
query, when to load it again.

"Today" is the hospital's local day, passed in by the route. Each process keeps the book
in a `KeptChargeBook`.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.chargemaster import ChargeBook, ChargeItem, Chargemaster, price_text
from services.reference.chargemaster.schemas import (
    ChargeItemDetail,
    ChargeItemIn,
    ChargeItemOut,
    ChargeItemPage,
    ChargemasterIn,
    ChargemasterList,
    ChargemasterOut,
    ChargemasterRef,
    ImportReport,
    consistency_problems,
)
from services.reference.exceptions import (
    ChargeItemNotInForce,
    ChargemasterRefused,
    NoChargemaster,
)
from services.reference.plan import scope_of
from services.reference.service import VERSION_TRUST_SECONDS
from services.storage.models import ChargemasterItemRecord, ChargemasterRecord
from services.storage.pagination import decode_cursor, decode_int_cursor, encode_cursor
from services.validation import FieldError, field_errors

CSV_COLUMNS = (
    "item_code",
    "name",
    "category",
    "unit_price",
    "equivalence_group",
    "unit",
    "name_en",
)
REQUIRED_COLUMNS = CSV_COLUMNS[:4]
SAMPLE_CSV = Path(__file__).parent.parent / "sample" / "chargemaster_sample.csv"
SAMPLE_NAME = "SAMPLE chargemaster (illustrative prices, not a price list)"
SAMPLE_VALID_FROM = date(2026, 1, 1)
# a set of hospital ids the caller sees, or None for every hospital
Visible = frozenset[str] | None


# --- CSV --------------------------------------------------------------------------------


def items_from_csv(text: str) -> list[ChargeItemIn]:
    """Every row of a chargemaster CSV (header required, columns in any order, empty
    optional cells as absent), or ChargemasterRefused naming each bad line and field
    (`line 7.unit_price`; a row whose quoted cell spans lines by the line it ends on): the
    whole file is refused for one bad row."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    problems: list[FieldError] = []
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if missing:
        problems.append(FieldError(field="line 1", reason=f"the header lacks {', '.join(missing)}"))
    if unknown:
        problems.append(FieldError(field="line 1", reason=f"unknown columns {', '.join(unknown)}"))
    if problems:
        raise ChargemasterRefused(
            f"expected the columns {','.join(CSV_COLUMNS)} (the first four required)", problems
        )
    items: list[ChargeItemIn] = []
    lines: list[int] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append(FieldError(field=f"line {line}", reason="more cells than columns"))
            continue
        values = {name: (value or "").strip() for name, value in row.items() if name}
        try:
            items.append(ChargeItemIn(**{name: value for name, value in values.items() if value}))
            lines.append(line)
        except ValidationError as error:
            problems.extend(
                FieldError(field=f"line {line}.{found.field}", reason=found.reason)
                for found in field_errors(error)
            )
    problems.extend(
        FieldError(field=f"line {lines[index]}", reason=reason)
        for index, reason in consistency_problems(items)
    )
    if not items and not problems:
        problems.append(FieldError(field="file", reason="no items"))
    if problems:
        problems.sort(key=_line_order)
        raise ChargemasterRefused("the chargemaster file is refused", problems)
    return items


def _line_order(problem: FieldError) -> int:
    number = problem.field.removeprefix("line ").partition(".")[0]
    return int(number) if number.isdigit() else 0


def sample_chargemaster() -> ChargemasterIn:
    return ChargemasterIn(
        name=SAMPLE_NAME,
        valid_from=SAMPLE_VALID_FROM,
        items=items_from_csv(SAMPLE_CSV.read_text(encoding="utf-8")),
    )


# --- the charge book ----------------------------------------------------------------------


async def chargemaster_version(*, db_session: AsyncSession) -> int:
    """The newest chargemaster's id (0: none yet): moves with every import."""
    return int(await db_session.scalar(select(func.max(ChargemasterRecord.id))) or 0)


async def load_charge_book(*, db_session: AsyncSession) -> ChargeBook:
    """Every chargemaster version with its items, as the immutable book the pre-check
    prices with."""
    records = (await db_session.scalars(select(ChargemasterRecord))).all()
    items: dict[int, dict[str, ChargeItem]] = {record.id: {} for record in records}
    for row in await db_session.scalars(select(ChargemasterItemRecord)):
        if row.chargemaster_id in items:
            items[row.chargemaster_id][row.item_code] = _item(row)
    return ChargeBook(
        version=max(items, default=0),
        chargemasters=tuple(_chargemaster(record, items[record.id]) for record in records),
    )


@dataclass
class KeptChargeBook:
    """The charge book one process keeps in memory, for the pre-check and for the
    categories of incoming charges: loaded again only when a newer version was stored,
    the newest version's id asked at most every `trust_seconds` (another process may
    have imported one; `forget` asks at once, after this process stored one itself)."""

    trust_seconds: float = VERSION_TRUST_SECONDS
    book: ChargeBook | None = None
    checked: float = -math.inf

    async def current(self, *, db_session: AsyncSession) -> ChargeBook:
        now = time.monotonic()
        if self.book is not None and now - self.checked < self.trust_seconds:
            return self.book
        version = await chargemaster_version(db_session=db_session)
        if self.book is None or self.book.version != version:
            self.book = await load_charge_book(db_session=db_session)
        self.checked = now
        return self.book

    def forget(self) -> None:
        self.checked = -math.inf


def _chargemaster(record: ChargemasterRecord, items: dict[str, ChargeItem]) -> Chargemaster:
    return Chargemaster(
        chargemaster_id=record.id,
        name=record.name,
        valid_from=record.valid_from,
        items=MappingProxyType(items),
        hospital_id=record.hospital_id,
        sample=record.sample,
    )


def _item(row: ChargemasterItemRecord) -> ChargeItem:
    return ChargeItem(
        item_code=row.item_code,
        name=row.name,
        category=row.category,
        unit_price=row.unit_price,
        equivalence_group=row.equivalence_group,
        unit=row.unit,
        name_en=row.name_en,
    )


# --- import -----------------------------------------------------------------------------


async def import_chargemaster(
    *, db_session: AsyncSession, chargemaster_in: ChargemasterIn, today: date, imported_by: str
) -> ImportReport:
    """Store a new version (the earlier ones stay) and say which prices today's pre-checks."""
    record = await _store(
        db_session=db_session, chargemaster_in=chargemaster_in, created_by=imported_by
    )
    headers = await _headers(db_session=db_session)
    valid = headers.in_force(scope_of(record.hospital_id), today)
    groups = {item.equivalence_group for item in chargemaster_in.items}
    return ImportReport(
        chargemaster=_out(record, len(chargemaster_in.items), _valid_ids(headers, today)),
        equivalence_groups=len(groups - {None}),
        today=today,
        valid_today=None if valid is None else _ref(valid),
    )


async def load_sample(*, db_session: AsyncSession) -> bool:
    """Store the sample chargemaster, marked as such, into a database that has none."""
    if await db_session.scalar(select(ChargemasterRecord.id).limit(1)) is not None:
        return False
    await _store(
        db_session=db_session,
        chargemaster_in=sample_chargemaster(),
        created_by="drgwatch (shipped sample)",
        sample=True,
    )
    return True


async def _store(
    *,
    db_session: AsyncSession,
    chargemaster_in: ChargemasterIn,
    created_by: str,
    sample: bool = False,
) -> ChargemasterRecord:
    record = ChargemasterRecord(
        name=chargemaster_in.name,
        valid_from=chargemaster_in.valid_from,
        hospital_id=chargemaster_in.hospital_id,
        sample=sample,
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
    db_session.add(record)
    await db_session.flush()
    db_session.add_all(
        ChargemasterItemRecord(
            chargemaster_id=record.id,
            item_code=item.item_code,
            name=item.name,
            name_en=item.name_en,
            category=str(item.category),
            unit=item.unit,
            unit_price=item.unit_price,
            equivalence_group=item.equivalence_group,
        )
        for item in chargemaster_in.items
    )
    await db_session.flush()
    return record


# --- reads --------------------------------------------------------------------------------


async def list_chargemasters(
    *,
    db_session: AsyncSession,
    today: date,
    hospitals: Visible,
    hospital_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ChargemasterList:
    """Versions newest first; `hospital_id`: those that apply to it ("*": the shared ones)."""
    statement = select(ChargemasterRecord)
    if hospitals is not None:
        statement = statement.where(
            ChargemasterRecord.hospital_id.is_(None)
            | ChargemasterRecord.hospital_id.in_(sorted(hospitals))
        )
    if hospital_id == "*":
        statement = statement.where(ChargemasterRecord.hospital_id.is_(None))
    elif hospital_id is not None:
        statement = statement.where(
            ChargemasterRecord.hospital_id.is_(None)
            | (ChargemasterRecord.hospital_id == hospital_id)
        )
    after = decode_int_cursor(cursor)
    if after is not None:
        statement = statement.where(ChargemasterRecord.id < after)
    records = list(
        await db_session.scalars(statement.order_by(ChargemasterRecord.id.desc()).limit(limit + 1))
    )
    page = records[:limit]
    counts = await _item_counts(db_session=db_session, ids=[record.id for record in page])
    valid = _valid_ids(await _headers(db_session=db_session), today)
    return ChargemasterList(
        items=[_out(record, counts.get(record.id, 0), valid) for record in page],
        next_cursor=encode_cursor([page[-1].id]) if len(records) > limit else None,
        today=today,
    )


def list_items(
    *,
    book: ChargeBook,
    hospital_id: str | None,
    on: date,
    hospitals: Visible,
    search: str | None = None,
    category: str | None = None,
    equivalence_group: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> ChargeItemPage:
    """A page of the items (by code) of the chargemaster valid on `on` for a hospital (no
    `hospital_id`: the shared one), those whose code or names hold `search` (any case)."""
    chargemaster = _valid(book, hospital_id, on, hospitals)
    after = decode_cursor(cursor, 1)
    needle = None if search is None else search.casefold()
    chosen: list[ChargeItem] = []
    for code in sorted(chargemaster.items):
        if after is not None and code <= str(after[0]):
            continue
        item = chargemaster.items[code]
        if category is not None and item.category != category:
            continue
        if equivalence_group is not None and item.equivalence_group != equivalence_group:
            continue
        if needle is not None and not any(
            needle in text.casefold() for text in (code, item.name, item.name_en or "")
        ):
            continue
        chosen.append(item)
        if len(chosen) > limit:
            break
    return ChargeItemPage(
        chargemaster=_ref(chargemaster),
        on=on,
        items=[item_out(item) for item in chosen[:limit]],
        next_cursor=encode_cursor([chosen[limit - 1].item_code]) if len(chosen) > limit else None,
    )


def get_item(
    *, book: ChargeBook, hospital_id: str | None, item_code: str, on: date, hospitals: Visible
) -> ChargeItemDetail:
    """An item of the chargemaster valid on `on`, with its equivalents cheapest first."""
    chargemaster = _valid(book, hospital_id, on, hospitals)
    item = chargemaster.items.get(item_code)
    if item is None:
        raise ChargeItemNotInForce(
            f"item {item_code} is not in chargemaster {chargemaster.chargemaster_id}"
            f" {chargemaster.name!r}, valid on {on}"
        )
    group = () if item.equivalence_group is None else chargemaster.groups[item.equivalence_group]
    return ChargeItemDetail(
        **item_out(item).model_dump(),
        chargemaster=_ref(chargemaster),
        on=on,
        equivalents=[item_out(other) for other in group if other.item_code != item_code],
    )


def item_out(item: ChargeItem) -> ChargeItemOut:
    return ChargeItemOut(
        item_code=item.item_code,
        name=item.name,
        name_en=item.name_en,
        category=item.category,
        unit=item.unit,
        unit_price=price_text(item.unit_price),
        equivalence_group=item.equivalence_group,
    )


def _valid(book: ChargeBook, hospital_id: str | None, on: date, hospitals: Visible) -> Chargemaster:
    chargemaster = None
    if hospital_id is None or hospitals is None or hospital_id in hospitals:
        chargemaster = book.in_force(scope_of(hospital_id), on)
    if chargemaster is None:
        where = f" for hospital {hospital_id}" if hospital_id else ""
        raise NoChargemaster(f"no chargemaster is valid on {on}{where}")
    return chargemaster


async def _headers(*, db_session: AsyncSession) -> ChargeBook:
    """Every version without its items: enough to rank them."""
    records = await db_session.scalars(select(ChargemasterRecord))
    return ChargeBook(chargemasters=tuple(_chargemaster(record, {}) for record in records))


def _valid_ids(headers: ChargeBook, today: date) -> set[int]:
    """The versions valid today, each for its own scope (a hospital, or every hospital)."""
    scopes = {scope_of(c.hospital_id) for c in headers.chargemasters}
    valid = set()
    for scope in scopes:
        chargemaster = headers.in_force(scope, today)
        if chargemaster is not None and scope_of(chargemaster.hospital_id) == scope:
            valid.add(chargemaster.chargemaster_id)
    return valid


async def _item_counts(*, db_session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    ids = list(ids)
    if not ids:
        return {}
    rows = await db_session.execute(
        select(ChargemasterItemRecord.chargemaster_id, func.count())
        .where(ChargemasterItemRecord.chargemaster_id.in_(ids))
        .group_by(ChargemasterItemRecord.chargemaster_id)
    )
    return {int(ident): int(count) for ident, count in rows.tuples()}


def _ref(chargemaster: Chargemaster) -> ChargemasterRef:
    return ChargemasterRef(
        chargemaster_id=chargemaster.chargemaster_id,
        name=chargemaster.name,
        valid_from=chargemaster.valid_from,
        hospital_id=chargemaster.hospital_id,
        sample=chargemaster.sample,
    )


def _out(record: ChargemasterRecord, item_count: int, valid: set[int]) -> ChargemasterOut:
    return ChargemasterOut(
        chargemaster_id=record.id,
        name=record.name,
        valid_from=record.valid_from,
        hospital_id=record.hospital_id,
        sample=record.sample,
        item_count=item_count,
        valid_today=record.id in valid,
        created_at=record.created_at,
        created_by=record.created_by,
    )
