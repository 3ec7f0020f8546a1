"""Reference data on the wire: catalogue imports and their reports, catalogues and their
groups, withdrawals, and alert thresholds."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from services.casecost.events import (
    CODE_RULE,
    IDENTIFIER_RULE,
    CharacterRule,
    Code,
    Identifier,
    Label,
    decimal_text,
)

PositiveDecimal = Annotated[Decimal, BeforeValidator(decimal_text), Field(gt=0)]

# A DRG base rate is yuan per unit of relative weight (standard = weight x base rate).
# China's regions set them in the thousands to tens of thousands (about 5,000 to 30,000
# yuan in published regional rates); these bounds leave room on both sides and refuse
# the usual slips: a rate in ten-thousands of yuan (1.2 for 12,000), in fen (1225270),
# or a placeholder such as 1.
BASE_RATE_MIN = Decimal(1_000)
BASE_RATE_MAX = Decimal(100_000)

ImportMode = Literal["full", "amend", "replace"]


def _plausible_base_rate(rate: Decimal) -> Decimal:
    if not BASE_RATE_MIN <= rate <= BASE_RATE_MAX:
        raise ValueError(
            f"{rate} is not a plausible base rate: it is yuan per unit of weight (a group of"
            f" weight 1.0 would be paid {rate}), expected {BASE_RATE_MIN:,} to"
            f" {BASE_RATE_MAX:,}"
        )
    return rate


BaseRate = Annotated[PositiveDecimal, AfterValidator(_plausible_base_rate)]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    drg_code: Code
    name: Label
    weight: Annotated[PositiveDecimal, Field(le=100)]
    avg_los_days: Annotated[PositiveDecimal, Field(le=365)] | None = None
    standard_cost: Annotated[PositiveDecimal, Field(le=100_000_000)] | None = None
    name_en: Label | None = None  # the English name, beside `name` in the catalogue's language
    # the region's mean cost per case of the group (区域例均费用), the reference of the
    # regional cost consumption index
    mean_cost: Annotated[PositiveDecimal, Field(le=100_000_000)] | None = None
    # the group's own high-ratio and low-ratio limits (x standard); none: 2 and 0.4
    high_ratio: Annotated[PositiveDecimal, Field(gt=1, le=20)] | None = None
    low_ratio: Annotated[PositiveDecimal, Field(lt=1)] | None = None


class CatalogueIn(BaseModel):
    """A catalogue import (POST /v1/drg-catalogues, `drgwatch drg import`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Label
    effective_from: date
    hospital_id: Identifier | None = None
    # full: the whole catalogue; amend: groups to add or replace in the catalogue in
    # force; replace: the whole catalogue, withdrawing what it leaves out
    mode: ImportMode = "full"
    # yuan per weight unit, per insurance scheme; with `amend`, only those that change
    base_rates: dict[Code, BaseRate] = Field(default_factory=dict)
    groups: list[GroupIn] = Field(min_length=1, max_length=20_000)
    dry_run: bool = False  # report what the import would do, store nothing

    @field_validator("groups")
    @classmethod
    def _unique_codes(cls, groups: list[GroupIn]) -> list[GroupIn]:
        seen: set[str] = set()
        for group in groups:
            if group.drg_code in seen:
                raise ValueError(f"drg_code {group.drg_code} appears more than once")
            seen.add(group.drg_code)
        return groups


class CatalogueRef(BaseModel):
    catalogue_id: int | None  # None: the catalogue a dry run would have imported
    name: str
    effective_from: date
    hospital_id: str | None
    sample: bool


class OpenCasesOut(BaseModel):
    """Open cases (the `cases` projection) in the catalogue's scope, before and after."""

    open_cases: int
    repriced: int  # priced by another catalogue or at another standard
    standard_changed: int  # of those, at another standard amount (or priced at last)
    unpriced: int  # with no standard afterwards
    newly_unpriced: int  # of those, priced before


class GroupChangesOut(BaseModel):
    added: int
    changed: int
    unchanged: int
    withdrawn: int


class ImportReport(BaseModel):
    """What an import stored (or, with dry_run, would store) and what it does."""

    dry_run: bool
    catalogue_id: int | None  # None on a dry run
    name: str
    effective_from: date
    hospital_id: str | None
    mode: ImportMode
    base_rates: dict[str, str]
    group_count: int
    based_on: CatalogueRef | None  # the catalogue in force it supersedes (never the sample)
    changes: GroupChangesOut
    today: date  # the hospital's local day
    in_force_today: CatalogueRef | None  # what prices cases admitted today, afterwards
    impact: OpenCasesOut


class CatalogueOut(BaseModel):
    catalogue_id: int
    name: str
    effective_from: date
    hospital_id: str | None
    sample: bool
    base_rates: dict[str, str]
    group_count: int
    in_force_today: bool  # prices cases admitted today (the hospital's local day)
    withdrawn: bool
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    withdrawn_reason: str | None
    import_mode: str | None
    based_on_id: int | None
    created_at: datetime
    created_by: str | None


class CatalogueList(BaseModel):
    items: list[CatalogueOut]
    next_cursor: str | None
    today: date


class GroupRow(BaseModel):
    drg_code: str
    name: str
    name_en: str | None
    weight: str
    avg_los_days: str | None
    standard_cost: str | None
    standard_costs: dict[str, str]  # per insurance scheme: weight x base rate, or the override
    mean_cost: str | None
    high_ratio: str | None  # null: 2
    low_ratio: str | None  # null: 0.4


class GroupPage(BaseModel):
    items: list[GroupRow]
    next_cursor: str | None


class CatalogueDetail(CatalogueOut):
    today: date
    groups: GroupPage


class GroupOut(GroupRow):
    """A group of the catalogue in force on a day, with that catalogue named."""

    catalogue_id: int
    catalogue_name: str
    effective_from: date
    sample: bool
    on: date


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    dry_run: bool = False


class WithdrawalReport(BaseModel):
    dry_run: bool
    catalogue: CatalogueOut
    today: date
    in_force_today: CatalogueRef | None  # what prices cases admitted today, afterwards
    impact: OpenCasesOut


Fraction = Annotated[Decimal, BeforeValidator(decimal_text), Field(gt=0, le=10)]


# a hospital id or "*" (every hospital), a DRG code or "*" (every DRG): thresholds and
# filters of reference data name either
HospitalScope = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._:-]*)$"),
    CharacterRule(IDENTIFIER_RULE + ", or * for every hospital"),
]
DrgScope = Annotated[
    str,
    Field(min_length=1, max_length=32, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]*)$"),
    CharacterRule(CODE_RULE + ", or * for every DRG"),
]


class ThresholdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital_id: HospitalScope = "*"
    drg_code: DrgScope = "*"
    blue: Fraction
    yellow: Fraction
    red: Fraction

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsIn:
        if not self.blue <= self.yellow <= self.red:
            raise ValueError("thresholds must satisfy blue <= yellow <= red")
        return self


class ThresholdsOut(BaseModel):
    hospital_id: str
    drg_code: str
    blue: str
    yellow: str
    red: str
    updated_at: datetime | None  # None: the built-in default


class ThresholdList(BaseModel):
    items: list[ThresholdsOut]
    next_cursor: str | None
    default: ThresholdsOut  # what applies where no row does
