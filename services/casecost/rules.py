"""Monitoring rules as data: their format, and the pure evaluators of case and department rules.

A rule file (YAML or JSON, `RuleFile`) holds rules; each rule names its `kind` (which
evaluator), its own `version` (bumped on every change), a `severity` (blue, yellow, red),
where it applies (`hospitals`, `departments`, `exclude_departments`; empty: everywhere)
and the `params` of its kind. services/reference/rules.py reads the files; this module
only validates and evaluates, with no I/O.

Case rules run after each event applied to a case:

    evaluate_case(rules, memory, state, event, now) -> (memory, findings)

`rules` is the rule set compiled once (`CaseRules.compile`) with the hospitals' time zone
(the one the price book uses, so that a rule's local day is the day `CaseState.cost_by_day`
counts); `memory` (`CaseMemory`) is the little a rule needs beyond the case state: per
tracked exam/lab item the net quantity charged on each local day, and the periods that
have raised a finding. Like `apply_event`, it changes `memory` in place and returns it;
it is plain data (`to_dict` / `from_dict`), bounded, and depends only on the events in the
order they were applied, so a replay rebuilds it exactly.

A finding is an alert record (`kind: "rule"`) whose `alert_id` is a uuid5 over the rule
id and version, the hospital, the case (or department) and the finding's period: the stay
for once-per-stay rules, the local day (and item) for daily rules, the event for a single
order. Whatever is replayed or redelivered, one finding keeps one id; the memory's record
of periods raised only spares the sink the same finding again with every event.

Department rules (`cost_per_case_growth`, `low_ratio_share`, `drg_over_standard_months`)
are pure functions over a department's period figures (`DepartmentPeriod`, `DrgMonth`),
run on a schedule and when a period closes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from services.casecost.events import (
    Category,
    Charge,
    Code,
    Credit,
    Identifier,
    Label,
    decimal_text,
)
from services.casecost.state import CaseState

RULE_NAMESPACE = uuid.UUID("0b6c2f3e-8d41-4a57-b7e2-5f9a1c3d7e24")
RULE_ID_PATTERN = r"^[a-z0-9-]{1,64}$"
# what the memory keeps, at most: days per tracked item, tracked items, periods raised
MAX_ITEM_DAYS = 31
MAX_TRACKED_ITEMS = 300
MAX_FIRED = 200
# how far past the admission the stay rules' quick check looks at most (about 270 years)
MAX_STAY_DAYS = 100_000
ZERO = Decimal(0)
CENT = Decimal("0.01")
SHARE_PLACES = Decimal("0.0001")

Severity = Literal["blue", "yellow", "red"]
CASE_KINDS = (
    "repeat_item",
    "order_bound",
    "daily_spike",
    "category_share",
    "stay_over_average",
    "same_day_repeats",
)
DEPARTMENT_KINDS = ("cost_per_case_growth", "low_ratio_share", "drg_over_standard_months")
CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "drug": ("药品", "drug"),
    "consumable": ("耗材", "consumables"),
    "exam": ("检查", "exam"),
    "lab": ("检验", "lab"),
    "procedure": ("治疗", "procedure"),
    "bed": ("床位", "bed"),
    "nursing": ("护理", "nursing"),
    "other": ("其他", "other"),
}


def _rule_decimal(value: Any) -> Decimal:
    """A decimal written as a string or an exact number (the loaders read YAML and JSON
    numbers as Decimal from their text); a binary float cannot hold 0.15 and is refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be finite")
        return value
    if isinstance(value, float):  # only from Python callers: the loaders never make one
        raise ValueError('must be an exact decimal, e.g. "0.15", not a binary float')
    return decimal_text(value)


RuleDecimal = Annotated[
    Decimal,
    BeforeValidator(_rule_decimal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,4})?$"},
                {"type": "number", "minimum": 0},
            ],
            "description": 'a decimal number, e.g. 0.15 or "5000.00"',
        }
    ),
]
Share = Annotated[RuleDecimal, Field(gt=0, le=1)]
Money = Annotated[RuleDecimal, Field(ge=0, le=Decimal("1000000000"))]
RuleId = Annotated[
    str,
    Field(
        pattern=RULE_ID_PATTERN,
        description="1 to 64 characters: lower-case letters a-z, digits 0-9 and -",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleName(_Strict):
    zh: Label
    en: Label


# --- the parameters of each kind -------------------------------------------------------------


class RepeatItemParams(_Strict):
    """The same item charged again on another local day at most `within_days` days apart
    (net of credits; more than once on one day is `same_day_repeats`' business)."""

    categories: tuple[Category, ...] = Field(default=(Category.EXAM, Category.LAB), min_length=1)
    within_days: int = Field(default=3, ge=1, le=90)
    exclude_items: tuple[Code, ...] = ()
    # items cheaper than this are not checked (routine monitoring labs); 0: every item
    min_unit_price: Money = ZERO


class OrderBound(_Strict):
    max_amount: Money | None = None
    max_quantity: Annotated[RuleDecimal, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _bounds_something(self) -> OrderBound:
        if self.max_amount is None and self.max_quantity is None:
            raise ValueError("give max_amount, max_quantity or both")
        return self


DEFAULT_ORDER_BOUNDS: dict[Category, OrderBound] = {
    Category.DRUG: OrderBound(max_amount=Decimal("10000"), max_quantity=Decimal("100")),
    Category.CONSUMABLE: OrderBound(max_amount=Decimal("30000"), max_quantity=Decimal("50")),
    Category.EXAM: OrderBound(max_amount=Decimal("3000"), max_quantity=Decimal("3")),
    Category.LAB: OrderBound(max_amount=Decimal("2000"), max_quantity=Decimal("5")),
    Category.PROCEDURE: OrderBound(max_amount=Decimal("20000"), max_quantity=Decimal("24")),
}


class OrderBoundParams(_Strict):
    """A single charge line above the amount or quantity bound of its category
    (categories without a bound are not checked)."""

    bounds: dict[Category, OrderBound] = Field(default_factory=lambda: dict(DEFAULT_ORDER_BOUNDS))


class DailySpikeParams(_Strict):
    """One local day's charges above `factor` x the mean of the case's earlier days
    (the days with cost lines before it), once there are `min_days` earlier days."""

    factor: Annotated[RuleDecimal, Field(gt=0)] = Decimal("3")
    min_days: int = Field(default=3, ge=1, le=90)
    # a day below this is not a spike, whatever the ratio (0: no floor)
    min_day_amount: Money = ZERO


class CategoryShareParams(_Strict):
    """A category's share of the case's cost above its bound, once the case costs at
    least `min_total`."""

    shares: dict[Category, Share] = Field(
        default_factory=lambda: {
            Category.DRUG: Decimal("0.50"),
            Category.CONSUMABLE: Decimal("0.60"),
        },
        min_length=1,
    )
    min_total: Money = Decimal("5000")


class StayOverAverageParams(_Strict):
    """An open case's days so far above `ratio` x its DRG's average stay (time
    consumption above `ratio`)."""

    ratio: Annotated[RuleDecimal, Field(gt=0)] = Decimal("1")


class SameDayRepeatsParams(_Strict):
    """The same item charged more than `max_per_day` times on one local day: possible
    splitting of one service into several charges. Times are charge lines, never more
    than the net units (one line of 24 hourly units is one time)."""

    max_per_day: int = Field(default=3, ge=1, le=1000)
    categories: tuple[Category, ...] = Field(
        default=(Category.EXAM, Category.LAB, Category.PROCEDURE), min_length=1
    )
    exclude_items: tuple[Code, ...] = ()


class CostPerCaseGrowthParams(_Strict):
    """A department's cost per case up more than `max_growth` on the same period last
    year, or on the previous period where the department has no history of last year."""

    max_growth: Annotated[RuleDecimal, Field(gt=0)] = Decimal("0.15")
    min_cases: int = Field(default=5, ge=1)


class LowRatioShareParams(_Strict):
    """A department's low-ratio cases above `max_share` of its discharged cases."""

    max_share: Share = Decimal("0.20")
    min_cases: int = Field(default=5, ge=1)


class DrgOverStandardMonthsParams(_Strict):
    """A DRG of a department costing more than its standard `months` months running,
    with at least `min_cases` discharged cases in each of them (a DRG of one or two cases
    a month is over its standard now and then by chance alone)."""

    months: int = Field(default=3, ge=1, le=24)
    min_cases: int = Field(default=1, ge=1)


# --- rules -----------------------------------------------------------------------------------


class _RuleBase(_Strict):
    id: RuleId
    version: int = Field(ge=1)
    name: RuleName
    severity: Severity
    enabled: bool = True
    hospitals: tuple[Identifier, ...] = ()
    departments: tuple[Code, ...] = ()
    exclude_departments: tuple[Code, ...] = ()

    def applies_to(self, hospital_id: str, department: str | None) -> bool:
        """Whether the rule covers a hospital and department (empty lists: all)."""
        if self.hospitals and hospital_id not in self.hospitals:
            return False
        if self.departments and department not in self.departments:
            return False
        return not (department is not None and department in self.exclude_departments)


class RepeatItemRule(_RuleBase):
    kind: Literal["repeat_item"]
    params: RepeatItemParams = RepeatItemParams()


class OrderBoundRule(_RuleBase):
    kind: Literal["order_bound"]
    params: OrderBoundParams = OrderBoundParams()


class DailySpikeRule(_RuleBase):
    kind: Literal["daily_spike"]
    params: DailySpikeParams = DailySpikeParams()


class CategoryShareRule(_RuleBase):
    kind: Literal["category_share"]
    params: CategoryShareParams = CategoryShareParams()


class StayOverAverageRule(_RuleBase):
    kind: Literal["stay_over_average"]
    params: StayOverAverageParams = StayOverAverageParams()


class SameDayRepeatsRule(_RuleBase):
    kind: Literal["same_day_repeats"]
    params: SameDayRepeatsParams = SameDayRepeatsParams()


class CostPerCaseGrowthRule(_RuleBase):
    kind: Literal["cost_per_case_growth"]
    params: CostPerCaseGrowthParams = CostPerCaseGrowthParams()


class LowRatioShareRule(_RuleBase):
    kind: Literal["low_ratio_share"]
    params: LowRatioShareParams = LowRatioShareParams()


class DrgOverStandardMonthsRule(_RuleBase):
    kind: Literal["drg_over_standard_months"]
    params: DrgOverStandardMonthsParams = DrgOverStandardMonthsParams()


CaseRule = (
    RepeatItemRule
    | OrderBoundRule
    | DailySpikeRule
    | CategoryShareRule
    | StayOverAverageRule
    | SameDayRepeatsRule
)
DepartmentRule = CostPerCaseGrowthRule | LowRatioShareRule | DrgOverStandardMonthsRule
CASE_RULE_TYPES = (
    RepeatItemRule,
    OrderBoundRule,
    DailySpikeRule,
    CategoryShareRule,
    StayOverAverageRule,
    SameDayRepeatsRule,
)
DEPARTMENT_RULE_TYPES = (CostPerCaseGrowthRule, LowRatioShareRule, DrgOverStandardMonthsRule)
Rule = Annotated[CaseRule | DepartmentRule, Field(discriminator="kind")]


class RuleFile(_Strict):
    """drgwatch monitoring rules v1: one file of rules (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="drgwatch monitoring rules v1")

    version: Literal[1] = Field(description="the format version")
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules loaded, in file order; `sources` names the file each rule came from."""

    rules: tuple[CaseRule | DepartmentRule, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def get(self, rule_id: str) -> CaseRule | DepartmentRule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    @property
    def case_rules(self) -> tuple[CaseRule, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, CASE_RULE_TYPES))

    @property
    def department_rules(self) -> tuple[DepartmentRule, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, DEPARTMENT_RULE_TYPES))


@dataclass(frozen=True, slots=True)
class RuleSwitches:
    """Where rules are switched off: per rule, a hospital as a whole (department None) or
    one department of a hospital. A department's own switch wins over its hospital's, so
    a rule off for a hospital can stay on for one of its departments; no switch: the
    rule's own `enabled` and scope decide."""

    switches: Mapping[tuple[str, str, str | None], bool] = field(default_factory=dict)

    def allows(self, rule_id: str, hospital_id: str, department: str | None) -> bool:
        """Whether no switch turns the rule off for this hospital and department."""
        if not self.switches:
            return True
        if department is not None:
            own = self.switches.get((rule_id, hospital_id, department))
            if own is not None:
                return own
        return self.switches.get((rule_id, hospital_id, None), True)


NO_SWITCHES = RuleSwitches()


# --- the memory of a case --------------------------------------------------------------------


@dataclass(slots=True)
class _DayBase:
    """The net cost and number of a case's days with cost lines before `day`, as they
    stood after its `events_applied`-th event (`known_days`: its days with cost lines then)."""

    day: str
    total: Decimal
    days: int
    known_days: int
    events_applied: int


@dataclass(slots=True)
class ItemDay:
    """A tracked item on one local day: the charge lines posted, and the net quantity."""

    lines: int = 0
    quantity: Decimal = ZERO

    @property
    def times(self) -> Decimal:
        """How many times the item was charged that day: its lines, never more than the
        net units (one line of 24 hourly units is one time; a credited unit line is gone)."""
        return min(Decimal(self.lines), self.quantity)


@dataclass(slots=True)
class CaseMemory:
    """What case rules remember of a case beyond its state.

    `items`: per tracked item (the categories the repeat rules watch) and local day (ISO
    date), the charge lines and the net quantity (`ItemDay`); a credit takes its quantity
    back from the day it was posted on, else the latest earlier day that still has some,
    so that a credited duplicate no longer counts. At most MAX_ITEM_DAYS days per item
    (the oldest go first) and MAX_TRACKED_ITEMS items (the one charged longest ago goes
    first).
    `fired`: the periods that raised a finding (`rule@version/period`), oldest first, at
    most MAX_FIRED: one forgotten can only be raised again with the same alert_id.
    """

    items: dict[str, dict[str, ItemDay]] = field(default_factory=dict)
    fired: dict[str, None] = field(default_factory=dict)
    # the days before the latest day a daily rule looked at, kept up to date with each
    # event so that the next charge that day need not sum them again; not part of the
    # memory (never in its dict form or its equality): without it they are summed afresh
    day_base: _DayBase | None = field(default=None, compare=False, repr=False)
    # the dict form until the memory next changes, and each item's until the item does
    # (the changelog writes the memory with every batch that touches the case, mostly
    # with a few items changed, if any); not part of the memory
    wire: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    item_wire: dict[str, dict[str, list[Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # the tracked items' codes in order, until an item comes or goes
    codes: list[str] | None = field(default=None, compare=False, repr=False)
    # the moment before which no stay rule can find this stay too long, and what it was
    # worked out from (admission, average stay, the rules' ratio); not part of the memory
    stay_clear: tuple[datetime, Decimal, Decimal, datetime] | None = field(
        default=None, compare=False, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        """The plain form (shared until the memory changes: read it, never change it)."""
        if self.wire is None:
            codes, known = self.codes, self.item_wire
            if codes is None or len(codes) != len(self.items):  # an item came or went
                codes = self.codes = sorted(self.items)
            items = {}
            for code in codes:
                form = known.get(code)
                if form is None:
                    days = self.items[code]
                    form = known[code] = {
                        day: [on.lines, str(on.quantity)] for day, on in sorted(days.items())
                    }
                items[code] = form
            self.wire = {"items": items, "fired": list(self.fired)}
        return self.wire

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CaseMemory:
        if not data:
            return cls()
        return cls(
            items={
                code: {day: ItemDay(int(on[0]), Decimal(on[1])) for day, on in days.items()}
                for code, days in data.get("items", {}).items()
            },
            fired=dict.fromkeys(data.get("fired", ())),
        )

    def raised(self, key: str) -> bool:
        return key in self.fired

    def remember(self, key: str) -> None:
        self.wire = None
        self.fired[key] = None
        while len(self.fired) > MAX_FIRED:
            del self.fired[next(iter(self.fired))]

    def record(self, item_code: str, day: str, quantity: Decimal) -> dict[str, ItemDay]:
        """A charge line (positive quantity) or credit (negative) of a tracked item."""
        self.wire = None
        form = self.item_wire.pop(item_code, None)
        days = self.items.get(item_code)
        if days is None:
            days = self.items[item_code] = {}
            if len(self.items) > MAX_TRACKED_ITEMS:
                self._forget_an_item(keep=item_code)
        if quantity > 0:
            on = days.get(day)
            if on is None:
                on = days[day] = ItemDay()
            on.lines += 1
            on.quantity += quantity
            # the item's form again with this day changed, when that keeps its days in
            # order (a day charged again, or a later one): a copy, as an earlier form may
            # still be read; a late day's item is written out afresh
            if form is not None and (day in form or day > next(reversed(form), "")):
                form = dict(form)
                form[day] = [on.lines, str(on.quantity)]
                self.item_wire[item_code] = form
        else:
            _take_back(days, day, -quantity)
        if len(days) > MAX_ITEM_DAYS:
            for old in sorted(days)[: len(days) - MAX_ITEM_DAYS]:
                del days[old]
            self.item_wire.pop(item_code, None)
        return days

    def _forget_an_item(self, *, keep: str) -> None:
        stalest = min(
            (code for code in self.items if code != keep),
            key=lambda code: (max(self.items[code], default=""), code),
        )
        del self.items[stalest]
        self.item_wire.pop(stalest, None)
        self.codes = None


def _take_back(days: dict[str, ItemDay], day: str, quantity: Decimal) -> None:
    """A credit's quantity from the day it was posted on, then the latest earlier days,
    then the earliest later ones; what nothing was charged against waits on its day."""
    posted = days.get(day)
    order = [day] if posted is not None and posted.quantity > 0 else []
    order += sorted((d for d in days if d < day), reverse=True)
    order += sorted(d for d in days if d > day)
    for other in order:
        if quantity <= 0:
            break
        on = days[other]
        if on.quantity <= 0:
            continue
        taken = min(on.quantity, quantity)
        on.quantity -= taken
        quantity -= taken
    if quantity > 0:
        if posted is None:
            posted = days[day] = ItemDay()
        posted.quantity -= quantity


# --- case rules ------------------------------------------------------------------------------


_COST_LINES = (Charge, Credit)
_CHARGE_RULES = (RepeatItemRule, OrderBoundRule, DailySpikeRule, SameDayRepeatsRule)


class Happening(Protocol):
    """An event or internal command applied to a case (all a finding needs of it)."""

    @property
    def event_id(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class _Applicable:
    """The enabled case rules of one hospital and department, by kind."""

    repeat_item: tuple[RepeatItemRule, ...]
    order_bound: tuple[OrderBoundRule, ...]
    daily_spike: tuple[DailySpikeRule, ...]
    category_share: tuple[CategoryShareRule, ...]
    # with the key of the one period they have (the stay)
    stay_over_average: tuple[tuple[StayOverAverageRule, str], ...]
    same_day_repeats: tuple[SameDayRepeatsRule, ...]

    # whether any of them looks at a charge (worked out once, not with every event)
    on_charges: bool
    # the lowest ratio of the stay rules (None: there are none), and the fewest days with
    # cost lines the spike rules need before a day can be a spike (-1: there are none)
    stay_ratio: Decimal | None
    spike_days: int


class CaseRules:
    """The enabled case rules, compiled for evaluation in the hospitals' time zone, less
    those switched off for a hospital or department (`switches`)."""

    def __init__(
        self, rules: Iterable[CaseRule], zone: tzinfo, switches: RuleSwitches = NO_SWITCHES
    ) -> None:
        self.rules = tuple(rule for rule in rules if rule.enabled)
        self.zone = zone
        self.switches = switches
        # the categories whose items the memory tracks (those the repeat rules watch)
        tracked: set[str] = set()
        for rule in self.rules:
            if isinstance(rule, RepeatItemRule | SameDayRepeatsRule):
                tracked.update(category.value for category in rule.params.categories)
        self.tracked = frozenset(tracked)
        # applicable rules per (hospital, department): a handful of keys
        self._applicable: dict[tuple[str, str | None], _Applicable] = {}

    @classmethod
    def compile(
        cls, rule_set: RuleSet, zone: tzinfo, switches: RuleSwitches = NO_SWITCHES
    ) -> CaseRules:
        return cls(rule_set.case_rules, zone, switches)

    def applicable(self, hospital_id: str, department: str | None) -> _Applicable:
        key = (hospital_id, department)
        known = self._applicable.get(key)
        if known is None:
            allows = self.switches.allows
            rules = [
                rule
                for rule in self.rules
                if rule.applies_to(hospital_id, department)
                and allows(rule.id, hospital_id, department)
            ]
            known = self._applicable[key] = _Applicable(
                repeat_item=tuple(r for r in rules if isinstance(r, RepeatItemRule)),
                order_bound=tuple(r for r in rules if isinstance(r, OrderBoundRule)),
                daily_spike=tuple(r for r in rules if isinstance(r, DailySpikeRule)),
                category_share=tuple(r for r in rules if isinstance(r, CategoryShareRule)),
                stay_over_average=tuple(
                    (r, _key(r, "stay")) for r in rules if isinstance(r, StayOverAverageRule)
                ),
                same_day_repeats=tuple(r for r in rules if isinstance(r, SameDayRepeatsRule)),
                on_charges=any(isinstance(r, _CHARGE_RULES) for r in rules),
                stay_ratio=min(
                    (r.params.ratio for r in rules if isinstance(r, StayOverAverageRule)),
                    default=None,
                ),
                spike_days=min(
                    (r.params.min_days for r in rules if isinstance(r, DailySpikeRule)),
                    default=-1,
                ),
            )
        return known

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def day_of(self, state: CaseState, moment: datetime) -> str:
        """The local day (ISO) of a moment of the case: the one apply_event remembered
        for it when it worked it out in the same zone (a cost line's day always is)."""
        memo = state.memo
        if memo.days_zone is self.zone:
            if moment is memo.line_moment and memo.line_day is not None:
                return memo.line_day[1]  # the cost line just folded: the usual one
            if moment is memo.latest_moment and memo.latest_day is not None:
                return memo.latest_day.isoformat()  # the case's latest event
            known = memo.days.get(int(moment.timestamp()) // 900)
            if known is not None:
                return known[1]
        return moment.astimezone(self.zone).date().isoformat()


def evaluate_case(
    rules: CaseRules,
    memory: CaseMemory,
    state: CaseState,
    event: Happening,
    now: datetime,
) -> tuple[CaseMemory, list[dict[str, Any]]]:
    """The findings of the case rules after `event` was applied to `state` (in place on
    `memory`, which is returned). Call once per applied event, never for a duplicate:
    the memory counts each cost line once."""
    findings: list[dict[str, Any]] = []
    applicable = rules.applicable(state.hospital_id, state.department)
    base = memory.day_base
    if base is not None and base.events_applied != state.events_applied - 1:
        # an event the rules did not see: the days before are summed afresh when needed
        memory.day_base = base = None
    if not isinstance(event, _COST_LINES):
        if base is not None:
            base.events_applied = state.events_applied
    else:
        charge = event if isinstance(event, Charge) else None
        tracked = event.category in rules.tracked  # a StrEnum: its value's hash
        # no day is a spike before the case has more days with cost lines than min_days
        spike = charge is not None and len(state.cost_by_day) > applicable.spike_days >= 0
        day = rules.day_of(state, event.occurred_at) if tracked or base is not None or spike else ""
        if base is not None:
            _keep_day_base(base, state, event, day)
        days = None
        if tracked:
            quantity = event.quantity if charge is not None else -event.quantity
            days = memory.record(event.item_code, day, quantity)
        if charge is not None and applicable.on_charges:
            for order_rule in applicable.order_bound:
                bound = order_rule.params.bounds.get(charge.category)
                if bound is None:
                    continue
                over_amount = bound.max_amount is not None and charge.amount > bound.max_amount
                over_quantity = (
                    bound.max_quantity is not None and charge.quantity > bound.max_quantity
                )
                if over_amount or over_quantity:
                    _order_bound(
                        order_rule, bound, over_amount, over_quantity, state, charge, now, findings
                    )
            if days is not None:
                for repeat_rule in applicable.repeat_item:
                    _repeat_item(repeat_rule, memory, state, charge, day, days, now, findings)
                for same_day_rule in applicable.same_day_repeats:
                    _same_day(same_day_rule, memory, state, charge, day, days, now, findings)
            if spike:
                for spike_rule in applicable.daily_spike:
                    _daily_spike(spike_rule, memory, state, charge, day, now, findings)
        for share_rule in applicable.category_share:
            if state.total_cost >= share_rule.params.min_total:
                _category_share(share_rule, memory, state, event, now, findings)
    stay_ratio = applicable.stay_ratio
    if stay_ratio is not None and _stay_may_be_long(stay_ratio, memory, state):
        for stay_rule, stay_key in applicable.stay_over_average:
            if stay_key not in memory.fired:
                _stay_over_average(stay_rule, stay_key, rules, memory, state, event, now, findings)
    return memory, findings


def _stay_may_be_long(ratio: Decimal, memory: CaseMemory, state: CaseState) -> bool:
    """Whether a stay rule of at least `ratio` could find the open stay too long now; the
    moment before which none can is worked out once per admission and average stay."""
    latest, admitted, average = state.last_event_at, state.admitted_at, state.avg_los_days
    if latest is None or admitted is None or average is None or state.discharged_at is not None:
        return False
    clear = memory.stay_clear
    if (
        clear is None
        or clear[0] is not admitted
        or clear[1] is not average
        or clear[2] is not ratio
    ):
        # _stay_over_average looks no further while (latest - admitted).days + 2 <= bound,
        # that is while fewer than floor(bound - 2) + 1 whole days have passed
        days = min(math.floor(ratio * average - 2) + 1, MAX_STAY_DAYS)
        clear = memory.stay_clear = (admitted, average, ratio, admitted + timedelta(days=days))
    return latest >= clear[3]


def _keep_day_base(base: _DayBase, state: CaseState, line: Charge | Credit, day: str) -> None:
    """Bring the days-before sum up to date with the cost line just applied (on `day`)."""
    base.events_applied = state.events_applied
    known_days = len(state.cost_by_day)
    if day < base.day:
        base.total += line.amount if isinstance(line, Charge) else -line.amount
        if known_days != base.known_days:
            base.days += 1
    base.known_days = known_days


def _order_bound(
    rule: OrderBoundRule,
    bound: OrderBound,
    over_amount: bool,
    over_quantity: bool,
    state: CaseState,
    event: Charge,
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    """The finding of a charge line over its bound in amount, quantity or both."""
    zh_category, en_category = CATEGORY_NAMES[event.category.value]
    parts_zh, parts_en = [], []
    if over_amount:
        parts_zh.append(f"金额 {event.amount} 元超过上限 {bound.max_amount} 元")
        parts_en.append(f"amount {event.amount} over the bound of {bound.max_amount}")
    if over_quantity:
        parts_zh.append(f"数量 {event.quantity} 超过上限 {bound.max_quantity}")
        parts_en.append(f"quantity {event.quantity} over the bound of {bound.max_quantity}")
    findings.append(
        _case_finding(
            rule,
            state,
            event,
            now,
            period=f"order/{event.event_id}",
            detail={
                "item_code": event.item_code,
                "item_name": event.item_name,
                "category": event.category.value,
                "order_id": event.order_id,
                "ordered_by": event.ordered_by,
                "quantity": str(event.quantity),
                "amount": str(event.amount),
                "max_quantity": _text(bound.max_quantity),
                "max_amount": _text(bound.max_amount),
            },
            text_zh=f"单笔{zh_category}医嘱 {event.item_name}（{event.item_code}）"
            + "，".join(parts_zh),
            text_en=f"One {en_category} order of {event.item_name} ({event.item_code}): "
            + "; ".join(parts_en),
        )
    )


def _repeat_item(
    rule: RepeatItemRule,
    memory: CaseMemory,
    state: CaseState,
    event: Charge,
    day: str,
    days: dict[str, ItemDay],
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    params = rule.params
    if event.category not in params.categories or event.item_code in params.exclude_items:
        return
    if event.unit_price < params.min_unit_price:
        return
    on = days.get(day)  # gone when a late line's day is older than the days kept
    if on is None or on.quantity <= 0 or len(days) < 2:
        return
    # the days within reach, looked up (the item's days are ISO dates, as day_of gives them)
    others = [
        other
        for other in _days_around(day, params.within_days)
        if (charged := days.get(other)) is not None and charged.quantity > 0
    ]
    if not others:
        return
    key = _key(rule, f"{day}/{event.item_code}")
    if memory.raised(key):
        return
    memory.remember(key)
    findings.append(
        _case_finding(
            rule,
            state,
            event,
            now,
            period=f"{day}/{event.item_code}",
            detail={
                "item_code": event.item_code,
                "item_name": event.item_name,
                "category": event.category.value,
                "day": day,
                "other_days": others,
                "within_days": params.within_days,
                "amount": str(event.amount),
            },
            text_zh=f"{event.item_name}（{event.item_code}）于 {day} 再次收费，"
            f"{params.within_days} 天内已于 {'、'.join(others)} 收费",
            text_en=f"{event.item_name} ({event.item_code}) charged again on {day}, "
            f"within {params.within_days} days of {', '.join(others)}",
        )
    )


_AROUND: dict[tuple[str, int], tuple[str, ...]] = {}


def _days_around(day: str, within: int) -> tuple[str, ...]:
    """The ISO dates at most `within` days before or after `day` (not `day`), in order."""
    known = _AROUND.get((day, within))
    if known is None:
        if len(_AROUND) >= 4096:  # a few months of days per `within`: start again past that
            _AROUND.clear()
        this = date.fromisoformat(day)
        known = _AROUND[day, within] = tuple(
            (this + timedelta(days=offset)).isoformat()
            for offset in range(-within, within + 1)
            if offset
        )
    return known


def _same_day(
    rule: SameDayRepeatsRule,
    memory: CaseMemory,
    state: CaseState,
    event: Charge,
    day: str,
    days: dict[str, ItemDay],
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    params = rule.params
    if event.category not in params.categories or event.item_code in params.exclude_items:
        return
    on = days.get(day)
    # times = min(lines, net quantity): above the bound only when both are
    if on is None or on.lines <= params.max_per_day or on.quantity <= params.max_per_day:
        return
    times = on.times
    key = _key(rule, f"{day}/{event.item_code}")
    if memory.raised(key):
        return
    memory.remember(key)
    findings.append(
        _case_finding(
            rule,
            state,
            event,
            now,
            period=f"{day}/{event.item_code}",
            detail={
                "item_code": event.item_code,
                "item_name": event.item_name,
                "category": event.category.value,
                "day": day,
                "times": str(times),
                "max_per_day": params.max_per_day,
            },
            text_zh=f"{event.item_name}（{event.item_code}）{day} 当日收费 {times} 次，"
            f"超过 {params.max_per_day} 次，疑似分解收费",
            text_en=f"{event.item_name} ({event.item_code}) charged {times} times on {day}, "
            f"more than {params.max_per_day}: possible splitting",
        )
    )


def _daily_spike(
    rule: DailySpikeRule,
    memory: CaseMemory,
    state: CaseState,
    event: Charge,
    day: str,
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    params = rule.params
    by_day = state.cost_by_day
    if len(by_day) <= params.min_days:
        return
    day_total = by_day.get(day, ZERO)
    if day_total <= 0 or day_total < params.min_day_amount:
        return
    earlier_total, earlier_days = _earlier_days(memory, state, day)
    if earlier_days < params.min_days or earlier_total <= 0:
        return
    # exactly: day_total > factor x earlier_total / earlier_days
    if day_total * earlier_days <= params.factor * earlier_total:
        return
    key = _key(rule, day)
    if memory.raised(key):
        return
    memory.remember(key)
    mean = (earlier_total / earlier_days).quantize(CENT, rounding=ROUND_HALF_UP)
    times = (day_total * earlier_days / earlier_total).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    findings.append(
        _case_finding(
            rule,
            state,
            event,
            now,
            period=day,
            detail={
                "day": day,
                "day_total": str(day_total),
                "earlier_days": earlier_days,
                "earlier_mean": str(mean),
                "times_mean": str(times),
                "factor": str(params.factor),
            },
            text_zh=f"{day} 当日费用 {day_total} 元，是此前 {earlier_days} 天日均 {mean} 元的 "
            f"{times} 倍（阈值 {params.factor} 倍）",
            text_en=f"Charges on {day} of {day_total} are {times} times the mean of "
            f"{mean} over the {earlier_days} days before (bound {params.factor} times)",
        )
    )


def _earlier_days(memory: CaseMemory, state: CaseState, day: str) -> tuple[Decimal, int]:
    """The net cost of the case's days with cost lines before `day`, and how many."""
    base = memory.day_base
    if base is None or base.day != day:
        total, days = ZERO, 0
        for other, amount in state.cost_by_day.items():
            if other < day:
                total += amount
                days += 1
        base = memory.day_base = _DayBase(
            day, total, days, len(state.cost_by_day), state.events_applied
        )
    return base.total, base.days


def _category_share(
    rule: CategoryShareRule,
    memory: CaseMemory,
    state: CaseState,
    event: Charge | Credit,
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    params = rule.params
    total = state.total_cost
    if total <= 0 or total < params.min_total:
        return
    # a charge lowers every other category's share: unless it just took the case past
    # min_total, only its own category can have crossed its bound
    watched: Iterable[tuple[Category, Decimal]]
    if isinstance(event, Charge) and total - event.amount >= params.min_total:
        own = params.shares.get(event.category)
        if own is None:
            return
        watched = ((event.category, own),)
    else:
        watched = params.shares.items()
    for category, bound in watched:
        cost = state.cost_by_category.get(category, ZERO)  # a StrEnum: its value's hash
        if cost <= bound * total:
            continue
        key = _key(rule, f"stay/{category.value}")
        if memory.raised(key):
            continue
        memory.remember(key)
        share = (cost / total).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)
        zh_category, en_category = CATEGORY_NAMES[category.value]
        findings.append(
            _case_finding(
                rule,
                state,
                event,
                now,
                period=f"stay/{category.value}",
                detail={
                    "category": category.value,
                    "category_cost": str(cost),
                    "total_cost": str(total),
                    "share": str(share),
                    "max_share": str(bound),
                },
                text_zh=f"{zh_category}费用 {cost} 元，占总费用 {total} 元的 {_percent(share)}，"
                f"超过上限 {_percent(bound)}",
                text_en=f"{en_category.capitalize()} cost {cost} is {_percent(share)} of the "
                f"total {total}, over the bound of {_percent(bound)}",
            )
        )


def _stay_over_average(
    rule: StayOverAverageRule,
    key: str,
    rules: CaseRules,
    memory: CaseMemory,
    state: CaseState,
    event: Happening,
    now: datetime,
    findings: list[dict[str, Any]],
) -> None:
    average, admitted, latest = state.avg_los_days, state.admitted_at, state.last_event_at
    if average is None or admitted is None or latest is None or state.discharged_at is not None:
        return
    # two moments' local days are at most their whole elapsed days plus one apart (plus
    # one more where a zone's offset moved): a stay that far below the bound needs no more
    bound = rule.params.ratio * average
    if (latest - admitted).days + 2 <= bound:
        return
    days = (rules.local_day(latest) - rules.local_day(admitted)).days
    if days <= bound:
        return
    memory.remember(key)
    drg = state.drg_code or ""
    ratio = rule.params.ratio
    times_en = "" if ratio == 1 else f"{ratio} times "
    times_zh = "" if ratio == 1 else f"的 {ratio} 倍"
    findings.append(
        _case_finding(
            rule,
            state,
            event,
            now,
            period="stay",
            detail={
                "days": days,
                "avg_los_days": str(average),
                "ratio": str(rule.params.ratio),
                "admitted_on": rules.local_day(admitted).isoformat(),
                "as_of": rules.local_day(latest).isoformat(),
            },
            text_zh=f"已住院 {days} 天，超过 {drg} 的平均住院日 {average} 天{times_zh}",
            text_en=f"In hospital {days} days, beyond {times_en}the average stay of {average} "
            f"days for {drg}",
        )
    )


def _key(rule: CaseRule | DepartmentRule, period: str) -> str:
    return f"{rule.id}@{rule.version}/{period}"


def _case_finding(
    rule: CaseRule,
    state: CaseState,
    event: Happening,
    now: datetime,
    *,
    period: str,
    detail: dict[str, Any],
    text_zh: str,
    text_en: str,
) -> dict[str, Any]:
    subject = f"{state.hospital_id}/{state.case_id}"
    return {
        "alert_id": finding_id(rule, subject, period),
        "kind": "rule",
        "rule_id": rule.id,
        "rule_version": rule.version,
        "rule_kind": rule.kind,
        "severity": rule.severity,
        "hospital_id": state.hospital_id,
        "case_id": state.case_id,
        "department": state.department,
        "drg_code": state.drg_code,
        "level": rule.severity,
        # the level the case stands at, as a forecast alert gives it
        "previous_level": state.alert_level,
        "transition": "raised",
        "period": period,
        "total_cost": str(state.total_cost),
        "standard_cost": _text(state.standard_cost),
        "ratio": _text(state.ratio),
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "raised_at": now.astimezone(UTC).isoformat(),
        "top_contributors": state.top_contributors(),
        "detail": detail,
        # the rule's name as it was when it found this
        "rule_name": {"zh": rule.name.zh, "en": rule.name.en},
        "text_zh": text_zh,
        "text_en": text_en,
    }


def finding_id(rule: CaseRule | DepartmentRule, subject: str, period: str) -> str:
    """The finding's alert id: the same rule version, subject and period, the same id."""
    return str(uuid.uuid5(RULE_NAMESPACE, f"{rule.id}/{rule.version}/{subject}/{period}"))


# --- department rules ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepartmentPeriod:
    """A department's discharged, priced cases of a period (e.g. "2026-11"), with the
    cost per case of the same period last year and of the previous period, where known."""

    hospital_id: str
    department: str
    period: str
    cases: int
    cost_per_case: Decimal | None
    low_ratio_cases: int = 0
    last_year_cost_per_case: Decimal | None = None
    previous_cost_per_case: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DrgMonth:
    """One DRG of a department in one month ("2026-09"): its discharged, priced cases."""

    month: str
    cases: int
    total_cost: Decimal
    total_standard: Decimal


def evaluate_department(
    rules: Iterable[DepartmentRule],
    period: DepartmentPeriod,
    drg_months: Mapping[str, Sequence[DrgMonth]],
    now: datetime,
    switches: RuleSwitches = NO_SWITCHES,
) -> list[dict[str, Any]]:
    """The findings of the enabled department rules over a department's period figures
    and, per DRG, its months up to the period's (oldest first); a rule switched off for
    the hospital or department (`switches`) is skipped."""
    findings: list[dict[str, Any]] = []
    for rule in rules:
        if not rule.enabled or not rule.applies_to(period.hospital_id, period.department):
            continue
        if not switches.allows(rule.id, period.hospital_id, period.department):
            continue
        if isinstance(rule, CostPerCaseGrowthRule):
            found = cost_per_case_growth(rule, period, now)
            findings.extend([found] if found else [])
        elif isinstance(rule, LowRatioShareRule):
            found = low_ratio_share(rule, period, now)
            findings.extend([found] if found else [])
        else:
            for drg_code, months in sorted(drg_months.items()):
                found = drg_over_standard(rule, period, drg_code, months, now)
                findings.extend([found] if found else [])
    return findings


def cost_per_case_growth(
    rule: CostPerCaseGrowthRule, period: DepartmentPeriod, now: datetime
) -> dict[str, Any] | None:
    """Cost per case up more than max_growth on the same period last year, else on the
    previous period; the finding says which baseline it used."""
    params = rule.params
    current = period.cost_per_case
    if current is None or period.cases < params.min_cases:
        return None
    if period.last_year_cost_per_case is not None and period.last_year_cost_per_case > 0:
        baseline, base = "same_period_last_year", period.last_year_cost_per_case
        base_zh, base_en = "去年同期", "the same period last year"
    elif period.previous_cost_per_case is not None and period.previous_cost_per_case > 0:
        baseline, base = "previous_period", period.previous_cost_per_case
        base_zh, base_en = (
            "上一周期（无去年同期数据）",
            "the previous period (no history of last year)",
        )
    else:
        return None
    if current <= base * (1 + params.max_growth):
        return None
    growth = ((current - base) / base).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)
    return _department_finding(
        rule,
        period,
        now,
        drg_code=None,
        key=period.period,
        detail={
            "period": period.period,
            "cases": period.cases,
            "cost_per_case": str(current),
            "baseline": baseline,
            "baseline_cost_per_case": str(base),
            "growth": str(growth),
            "max_growth": str(params.max_growth),
        },
        text_zh=f"{period.department} {period.period} 例均费用 {current} 元，较{base_zh} "
        f"{base} 元上升 {_percent(growth)}，超过 {_percent(params.max_growth)}",
        text_en=f"{period.department} cost per case in {period.period} is {current}, up "
        f"{_percent(growth)} on {base_en} ({base}), more than {_percent(params.max_growth)}",
    )


def low_ratio_share(
    rule: LowRatioShareRule, period: DepartmentPeriod, now: datetime
) -> dict[str, Any] | None:
    """Low-ratio cases above max_share of the department's discharged cases."""
    params = rule.params
    if period.cases < params.min_cases or period.low_ratio_cases <= params.max_share * period.cases:
        return None
    share = (Decimal(period.low_ratio_cases) / period.cases).quantize(
        SHARE_PLACES, rounding=ROUND_HALF_UP
    )
    return _department_finding(
        rule,
        period,
        now,
        drg_code=None,
        key=period.period,
        detail={
            "period": period.period,
            "cases": period.cases,
            "low_ratio_cases": period.low_ratio_cases,
            "share": str(share),
            "max_share": str(params.max_share),
        },
        text_zh=f"{period.department} {period.period} 低倍率病例 {period.low_ratio_cases} 例，"
        f"占出院病例 {period.cases} 例的 {_percent(share)}，超过 {_percent(params.max_share)}",
        text_en=f"{period.department} had {period.low_ratio_cases} low-ratio cases in "
        f"{period.period}, {_percent(share)} of {period.cases} discharged cases, more than "
        f"{_percent(params.max_share)}",
    )


def drg_over_standard(
    rule: DrgOverStandardMonthsRule,
    period: DepartmentPeriod,
    drg_code: str,
    months: Sequence[DrgMonth],
    now: datetime,
) -> dict[str, Any] | None:
    """A DRG whose cost exceeded its standard in each of the last `months` calendar
    months running (the latest of `months` included; a month with fewer than `min_cases`
    cases, none included, breaks the run)."""
    needed = rule.params.months
    if len(months) < needed:
        return None
    run = list(months[-needed:])
    for earlier, later in zip(run, run[1:], strict=False):
        if _next_month(earlier.month) != later.month:
            return None
    least = rule.params.min_cases
    if any(month.cases < least or month.total_cost <= month.total_standard for month in run):
        return None
    last = run[-1].month
    ratios = [
        (month.total_cost / month.total_standard).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)
        for month in run
    ]
    listed = ", ".join(f"{month.month} {ratio}" for month, ratio in zip(run, ratios, strict=True))
    return _department_finding(
        rule,
        period,
        now,
        drg_code=drg_code,
        key=f"{last}/{drg_code}",
        detail={
            "drg_code": drg_code,
            "months": [
                {
                    "month": month.month,
                    "cases": month.cases,
                    "total_cost": str(month.total_cost),
                    "total_standard": str(month.total_standard),
                    "ratio": str(ratio),
                }
                for month, ratio in zip(run, ratios, strict=True)
            ],
        },
        text_zh=f"{period.department} 的 {drg_code} 连续 {needed} 个月费用超过支付标准"
        f"（费用/标准：{listed}）",
        text_en=f"{drg_code} in {period.department} cost more than its standard {needed} "
        f"months running (cost/standard: {listed})",
    )


def _department_finding(
    rule: DepartmentRule,
    period: DepartmentPeriod,
    now: datetime,
    *,
    drg_code: str | None,
    key: str,
    detail: dict[str, Any],
    text_zh: str,
    text_en: str,
) -> dict[str, Any]:
    raised_at = now.astimezone(UTC).isoformat()
    return {
        "alert_id": finding_id(rule, f"{period.hospital_id}/dept/{period.department}", key),
        "kind": "rule",
        "rule_id": rule.id,
        "rule_version": rule.version,
        "rule_kind": rule.kind,
        "severity": rule.severity,
        "hospital_id": period.hospital_id,
        "case_id": "",
        "department": period.department,
        "drg_code": drg_code,
        "level": rule.severity,
        "previous_level": "none",
        "transition": "raised",
        "period": key,
        "event_id": "",
        "occurred_at": raised_at,
        "raised_at": raised_at,
        "top_contributors": [],
        "detail": detail,
        # the rule's name as it was when it found this
        "rule_name": {"zh": rule.name.zh, "en": rule.name.en},
        "text_zh": text_zh,
        "text_en": text_en,
    }


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _percent(share: Decimal) -> str:
    """0.6234 -> '62.34%', 0.2 -> '20%'."""
    value = (share * 100).quantize(CENT, rounding=ROUND_HALF_UP).normalize()
    return f"{value:f}%"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
