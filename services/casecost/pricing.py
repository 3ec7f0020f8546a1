"""DRG standards and alert thresholds: reference data the cost core prices against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from services.casecost.rules import CaseRules

AlertLevel = Literal["none", "blue", "yellow", "red"]
CaseLevel = Literal["unpriced", "none", "blue", "yellow", "red"]
LEVEL_RANK: dict[str, int] = {"none": 0, "blue": 1, "yellow": 2, "red": 3}
CENT = Decimal("0.01")
RATIO_PLACES = Decimal("0.0001")
# a hospital's day is its local calendar day: the time zone of the hospitals a deployment
# serves, unless configured (DRGWATCH_TIMEZONE)
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Level boundaries as fractions of the standard: blue >= , yellow >= , red > ."""

    blue: Decimal = Decimal("0.90")
    yellow: Decimal = Decimal("0.95")
    red: Decimal = Decimal("1.00")

    def __post_init__(self) -> None:
        if not (Decimal(0) < self.blue <= self.yellow <= self.red):
            raise ValueError("thresholds must satisfy 0 < blue <= yellow <= red")

    def level_for(self, total: Decimal, standard: Decimal) -> AlertLevel:
        """Compare exactly (total against threshold x standard), never a rounded ratio."""
        if total > self.red * standard:
            return "red"
        if total >= self.yellow * standard:
            return "yellow"
        if total >= self.blue * standard:
            return "blue"
        return "none"


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class DrgGroup:
    drg_code: str
    name: str
    weight: Decimal
    avg_los_days: Decimal | None = None
    standard_cost: Decimal | None = None  # explicit override of weight x base rate
    # the region's mean cost per case of the group (区域例均费用), where the catalogue gives
    # one: the reference of the regional cost consumption index
    mean_cost: Decimal | None = None
    # a discharged case costing more than high_ratio x its standard is a high-ratio case,
    # one costing less than low_ratio x its standard a low-ratio case (settled apart from
    # the DRG payment); None: the common 2 and 0.4
    high_ratio: Decimal | None = None
    low_ratio: Decimal | None = None
    name_en: str | None = None  # the English name, where the catalogue gives one


@dataclass(frozen=True, slots=True)
class Catalogue:
    catalogue_id: int
    name: str
    effective_from: date
    base_rates: dict[str, Decimal]
    groups: dict[str, DrgGroup]
    hospital_id: str | None = None  # None: applies to every hospital
    sample: bool = False  # the shipped sample: outranked by any real catalogue in force


@dataclass(frozen=True, slots=True)
class Standard:
    drg_code: str
    drg_name: str
    standard_cost: Decimal
    avg_los_days: Decimal | None
    catalogue_id: int


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Every catalogue version and threshold override, as one immutable snapshot."""

    version: int = 0
    catalogues: tuple[Catalogue, ...] = ()
    # keys: (hospital_id, drg_code) with "*" as wildcard for either part
    thresholds: dict[tuple[str, str], Thresholds] = field(default_factory=dict)
    # the hospitals' time zone: a case is priced by its day of admission there, whatever
    # offset the admission was written in
    zone: tzinfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    # the enabled case rules, compiled in `zone`; evaluated after every event applied
    case_rules: CaseRules | None = None

    def local_day(self, moment: datetime) -> date:
        """The hospital's calendar day of `moment`."""
        return moment.astimezone(self.zone).date()

    def catalogue_for(
        self, hospital_id: str, on: date, *, include_sample: bool = True
    ) -> Catalogue | None:
        """The catalogue in force on `on` for a hospital ("*": the one for every hospital).

        Any real catalogue in force outranks the sample, whatever their dates (a hospital
        that imports its 2025 catalogue must not have its cases priced by the sample of
        2026); then the newest effective date wins, then one specific to the hospital,
        then the one stored last.
        """
        best: Catalogue | None = None
        for catalogue in self.catalogues:
            if catalogue.effective_from > on:
                continue
            if catalogue.hospital_id not in (None, hospital_id):
                continue
            if catalogue.sample and not include_sample:
                continue
            if best is None or _precedence(catalogue) > _precedence(best):
                best = catalogue
        return best

    def group(self, hospital_id: str, drg_code: str, on: date) -> DrgGroup | None:
        catalogue = self.catalogue_for(hospital_id, on)
        return None if catalogue is None else catalogue.groups.get(drg_code)

    def standard(
        self, hospital_id: str, drg_code: str | None, scheme: str | None, on: date
    ) -> Standard | None:
        """The payment standard of a DRG for a scheme on a date, or None when unknown."""
        if drg_code is None:
            return None
        catalogue = self.catalogue_for(hospital_id, on)
        if catalogue is None:
            return None
        group = catalogue.groups.get(drg_code)
        if group is None:
            return None
        cost = standard_cost(group, None if scheme is None else catalogue.base_rates.get(scheme))
        if cost is None or cost <= 0:
            return None
        return Standard(drg_code, group.name, cost, group.avg_los_days, catalogue.catalogue_id)

    def thresholds_for(self, hospital_id: str, drg_code: str | None) -> Thresholds:
        code = drg_code or "*"
        for key in ((hospital_id, code), ("*", code), (hospital_id, "*"), ("*", "*")):
            if key in self.thresholds:
                return self.thresholds[key]
        return DEFAULT_THRESHOLDS


def standard_cost(group: DrgGroup, base_rate: Decimal | None) -> Decimal | None:
    """The group's explicit standard, else weight x base rate rounded half-up to the cent."""
    if group.standard_cost is not None:
        return group.standard_cost
    if base_rate is None:
        return None
    return (group.weight * base_rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _precedence(catalogue: Catalogue) -> tuple[bool, date, bool, int]:
    return (
        not catalogue.sample,
        catalogue.effective_from,
        catalogue.hospital_id is not None,
        catalogue.catalogue_id,
    )


def money(value: Decimal | None) -> str | None:
    """An amount to the cent, as money goes on the wire (None stays None)."""
    return None if value is None else str(value.quantize(CENT))


def ratio_of(total: Decimal, standard: Decimal) -> Decimal:
    """total / standard to four places, for display; levels never use the rounded value."""
    exact = total / standard
    return exact.quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)
