"""Catalogue payloads: POST /v1/drg-catalogues and the group lookup."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from services.casecost.events import Code, Identifier, Label, decimal_text

PositiveDecimal = Annotated[Decimal, BeforeValidator(decimal_text), Field(gt=0)]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    drg_code: Code
    name: Label
    weight: Annotated[PositiveDecimal, Field(le=100)]
    avg_los_days: Annotated[PositiveDecimal, Field(le=365)] | None = None
    standard_cost: Annotated[PositiveDecimal, Field(le=100_000_000)] | None = None


class CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Label
    effective_from: date
    hospital_id: Identifier | None = None
    base_rates: dict[Code, Annotated[PositiveDecimal, Field(le=10_000_000)]]
    groups: list[GroupIn] = Field(min_length=1, max_length=20_000)

    @field_validator("groups")
    @classmethod
    def _unique_codes(cls, groups: list[GroupIn]) -> list[GroupIn]:
        seen: set[str] = set()
        for group in groups:
            if group.drg_code in seen:
                raise ValueError(f"drg_code {group.drg_code} appears more than once")
            seen.add(group.drg_code)
        return groups


class CatalogueOut(BaseModel):
    catalogue_id: int
    name: str
    effective_from: date
    hospital_id: str | None
    base_rates: dict[str, str]
    groups: int


class GroupOut(BaseModel):
    catalogue_id: int
    catalogue_name: str
    effective_from: date
    drg_code: str
    name: str
    weight: str
    avg_los_days: str | None
    standard_cost: str | None
    standard_costs: dict[str, str]  # per insurance scheme: weight x base rate, or the override
