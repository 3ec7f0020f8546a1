"""Indicators, departments, targets and alert trends on the wire (decimals as strings)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from services.casecost.events import Label, money_text
from services.casecost.targets import Pace


class IndicatorsOut(BaseModel):
    """Every indicator of a set of discharged, priced cases; null where undefined."""

    cases: int
    total_weight: str | None
    cmi: str | None
    total_cost: str | None
    total_standard: str | None
    budget_execution: str | None
    surplus: str | None
    cost_consumption_index: str | None
    # against the region's mean cost per case of each DRG (null where the catalogue
    # gives none)
    regional_cost_consumption_index: str | None
    time_consumption_index: str | None
    mean_los_days: str | None
    drug_share: str | None
    consumables_share: str | None
    cost_by_category_share: dict[str, str]
    high_ratio_cases: int
    high_ratio_share: str | None
    low_ratio_cases: int
    low_ratio_share: str | None
    cost_per_case: str | None
    previous_cost_per_case: str | None
    cost_per_case_change: str | None


class IndicatorGroup(IndicatorsOut):
    key: str | None  # the department code or DRG code (null: cases with no department)
    name: str | None


class IndicatorReport(BaseModel):
    hospital_id: str
    from_: date = Field(serialization_alias="from")
    to: date
    overall: IndicatorsOut
    groups: list[IndicatorGroup]

    model_config = ConfigDict(populate_by_name=True)


class HospitalOut(BaseModel):
    hospital_id: str


class HospitalList(BaseModel):
    items: list[HospitalOut]


class DepartmentOut(BaseModel):
    code: str
    name_zh: str | None
    name_en: str | None


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name_zh: Label | None = None
    name_en: Label | None = None


MAX_TARGET_MONEY = Decimal("9999999999999999.99")


def _target_money(value: Decimal) -> Decimal:
    if value > MAX_TARGET_MONEY:
        raise ValueError(f"must not exceed {MAX_TARGET_MONEY}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("has more than 2 decimal places")
    return value


TargetMoney = Annotated[
    Decimal,
    BeforeValidator(money_text),
    AfterValidator(_target_money),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
            "description": "decimal string to the cent, zero or more",
        }
    ),
]


class TargetIn(BaseModel):
    """A department's targets for the period; null: no target for that measure."""

    model_config = ConfigDict(extra="forbid")

    cases: Annotated[int, Field(ge=0, le=10_000_000, strict=True)] | None = None
    cost_per_case: TargetMoney | None = None
    total_cost: TargetMoney | None = None

    @model_validator(mode="after")
    def _some_measure(self) -> TargetIn:
        if self.cases is None and self.cost_per_case is None and self.total_cost is None:
            raise ValueError(
                "set at least one of cases, cost_per_case, total_cost (DELETE removes a target)"
            )
        return self


class TargetOut(BaseModel):
    hospital_id: str
    department: str
    period: str
    cases: int | None
    cost_per_case: str | None
    total_cost: str | None
    updated_by: str
    updated_at: datetime


class TargetList(BaseModel):
    items: list[TargetOut]


class FiguresOut(BaseModel):
    cases: int | None
    cost_per_case: str | None
    total_cost: str | None


class TargetFiguresOut(FiguresOut):
    period: str  # the period the target was set for: the month's own, or its year's


class PaceOut(BaseModel):
    cases: Pace | None
    cost_per_case: Pace | None
    total_cost: Pace | None


class ProgressItem(BaseModel):
    department: str
    target: TargetFiguresOut
    actual: FiguresOut
    projected: FiguresOut | None
    pace: PaceOut


class ProgressReport(BaseModel):
    period: str
    elapsed_share: str
    items: list[ProgressItem]


class DailyAlerts(BaseModel):
    day: date
    red: int
    yellow: int
    blue: int


class DailyAlertList(BaseModel):
    items: list[DailyAlerts]
