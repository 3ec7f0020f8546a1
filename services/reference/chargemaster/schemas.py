"""The chargemaster on the wire: an import and its report, versions, items."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.casecost.events import Category, Code, Identifier, Label, UnitPrice

Unit = Annotated[Label, Field(max_length=32)]
MAX_ITEMS = 50_000


class ChargeItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item_code: Code
    name: Label
    category: Category
    unit_price: Annotated[UnitPrice, Field(gt=Decimal(0))]
    # items of one group stand for one another, one for one: the same category and unit
    equivalence_group: Code | None = None
    unit: Unit | None = None
    name_en: Label | None = None


class ChargemasterIn(BaseModel):
    """A chargemaster import (POST /v1/chargemasters, `drgwatch chargemaster import`): a
    new version, valid from `valid_from`; earlier versions stay as they were."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Label
    valid_from: date
    hospital_id: Identifier | None = None  # None: every hospital (a region's price list)
    items: list[ChargeItemIn] = Field(min_length=1, max_length=MAX_ITEMS)

    @field_validator("items")
    @classmethod
    def _consistent(cls, items: list[ChargeItemIn]) -> list[ChargeItemIn]:
        problems = consistency_problems(items)
        if problems:
            raise ValueError("; ".join(f"items[{index}]: {reason}" for index, reason in problems))
        return items


def consistency_problems(items: list[ChargeItemIn]) -> list[tuple[int, str]]:
    """(index, reason) of each item whose code came before, or whose category or unit
    differs from the first of its equivalence group's."""
    problems: list[tuple[int, str]] = []
    first_of_code: dict[str, int] = {}
    first_of_group: dict[str, ChargeItemIn] = {}
    for index, item in enumerate(items):
        if item.item_code in first_of_code:
            problems.append(
                (
                    index,
                    f"item_code {item.item_code} appears before,"
                    f" at item {first_of_code[item.item_code]}",
                )
            )
            continue
        first_of_code[item.item_code] = index
        if item.equivalence_group is None:
            continue
        first = first_of_group.setdefault(item.equivalence_group, item)
        if item.category != first.category:
            problems.append(
                (
                    index,
                    f"category {item.category} differs from {first.category} of"
                    f" {first.item_code} in equivalence group {item.equivalence_group}",
                )
            )
        elif item.unit != first.unit:
            problems.append(
                (
                    index,
                    f"unit {item.unit or '(none)'} differs from {first.unit or '(none)'} of"
                    f" {first.item_code} in equivalence group {item.equivalence_group}",
                )
            )
    return problems


class ChargemasterRef(BaseModel):
    chargemaster_id: int
    name: str
    valid_from: date
    hospital_id: str | None
    sample: bool


class ChargemasterOut(ChargemasterRef):
    item_count: int
    valid_today: bool = Field(description="prices today's pre-checks for its scope")
    created_at: datetime
    created_by: str


class ImportReport(BaseModel):
    chargemaster: ChargemasterOut
    equivalence_groups: int
    today: date = Field(description="the hospitals' local day")
    valid_today: ChargemasterRef | None = Field(
        description="the chargemaster pricing today's pre-checks in its scope, afterwards"
    )


class ChargemasterList(BaseModel):
    items: list[ChargemasterOut]
    next_cursor: str | None
    today: date


class ChargeItemOut(BaseModel):
    item_code: str
    name: str
    name_en: str | None
    category: str
    unit: str | None
    unit_price: str
    equivalence_group: str | None


class ChargeItemPage(BaseModel):
    """Items of the chargemaster valid on `on`, by code."""

    chargemaster: ChargemasterRef
    on: date
    items: list[ChargeItemOut]
    next_cursor: str | None


class ChargeItemDetail(ChargeItemOut):
    chargemaster: ChargemasterRef
    on: date
    equivalents: list[ChargeItemOut] = Field(
        description="the other items of its equivalence group, cheapest first"
    )
