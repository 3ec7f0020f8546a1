"""The benchmark's workload: a realistic hospital stream, and what it must add up to.

Hospital systems post charge lines in postings of 1 to 20 lines (median about 4), a
few cases run to hundreds of lines while most stay small, some lines are later
credited in part or in full, some cases are regrouped to another DRG, and a few
postings are sent twice. Every contender reads the same messages: one JSON event per
message, keyed by "hospital/case", with the per-case ledger sequence in a header as
ingest publishes it.

`expected()` recounts, without any drgwatch code, each case's total and level and the
alerts it must raise: the events of each case in order, duplicates left out, money in
Decimal, levels by the documented default thresholds. `expected_findings()` recounts
the same way the findings of two shipped rules as documented (large-order: a charge
line over its category's bound; category-share: a category's share of the case's cost
over its bound once the case costs 5,000, once per stay).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from services.casecost.rules import CategoryShareRule, OrderBoundRule, RuleSet
from services.reference import service as catalogue_service
from services.wire import case_key

CENT = Decimal("0.01")
HOSPITAL = "HBENCH"
DEPARTMENTS = ["CARDIO", "ORTHO", "GENSURG", "RESP", "ONCO", "NEURO"]
CATEGORIES = ["drug", "consumable", "exam", "lab", "procedure", "bed", "nursing", "other"]
LEVEL_RANK = {"none": 0, "blue": 1, "yellow": 2, "red": 3}


@dataclass(frozen=True, slots=True)
class Message:
    """An events-topic record as the ingest ledger would publish it (sealed when produced,
    with the key of the database the worker reads)."""

    key: bytes
    value: bytes
    case_seq: int | None  # its number within its case in the ledger; None: a duplicate


@dataclass
class Workload:
    messages: list[Message]
    lines: int  # charge and credit lines among the messages (duplicates included)
    cases: int
    postings: list[list[dict[str, Any]]]  # as hospital systems post them, in order

    @property
    def events(self) -> int:
        return len(self.messages)


@dataclass
class ExpectedCase:
    total: Decimal = Decimal(0)
    level: str = "none"
    events: int = 0
    transitions: list[tuple[str, str]] = field(default_factory=list)


def _standards() -> tuple[list[tuple[str, Decimal]], dict[str, Decimal]]:
    sample = catalogue_service.sample_catalogue()
    groups = [(g.drg_code, g.weight) for g in sample.groups if g.standard_cost is None]
    return groups, dict(sample.base_rates)


def _posting_size(rng: random.Random) -> int:
    """1..20 lines, median 4: most postings are a handful of orders, a few are long."""
    return max(1, min(20, round(rng.lognormvariate(math.log(4), 0.75))))


def generate(lines: int, cases: int, *, seed: int = 11, hospital: str = HOSPITAL) -> Workload:
    rng = random.Random(seed)
    groups, base_rates = _standards()
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    # skewed case sizes (log-normal): most cases a few dozen lines, a long stay hundreds
    weights = [rng.lognormvariate(0, 1.0) for _ in range(cases)]
    scale = lines / sum(weights)
    sizes = [max(1, round(w * scale)) for w in weights]
    sizes[0] += lines - sum(sizes)  # the remainder (either sign) to the first case
    while sizes[0] < 1:  # the rounding took too much: give it back from the largest
        biggest = max(range(1, cases), key=sizes.__getitem__)
        sizes[biggest] -= 1
        sizes[0] += 1

    per_case: list[list[list[dict[str, Any]]]] = []  # case -> postings -> events
    for number, size in enumerate(sizes):
        case_id = f"B{number:06d}"
        drg_code, weight = rng.choice(groups)
        scheme = rng.choice(sorted(base_rates))
        standard = (weight * base_rates[scheme]).quantize(CENT, ROUND_HALF_UP)
        # a price per line that takes the case to between 60% and 130% of its standard
        target = standard * Decimal(str(rng.uniform(0.6, 1.3)))
        unit = max(CENT, (target / size).quantize(CENT, ROUND_HALF_UP))
        event = _CaseEvents(hospital, case_id, start + timedelta(minutes=rng.randint(0, 600)), rng)
        department = rng.choice(DEPARTMENTS)
        postings = [
            [
                event(
                    "admitted",
                    department=department,
                    drg_code=drg_code,
                    insurance_scheme=scheme,
                    admitted_at=event.at.isoformat(),
                )
            ]
        ]
        charged: list[dict[str, Any]] = []
        remaining = size
        regroup_at = rng.randint(1, size) if rng.random() < 0.05 else -1
        while remaining > 0:
            posting: list[dict[str, Any]] = []
            for _ in range(min(remaining, _posting_size(rng))):
                remaining -= 1
                if charged and rng.random() < 0.03:  # each charge is credited at most once
                    credited = charged.pop(rng.randrange(len(charged)))
                    posting.append(_credit(event, credited, rng))
                    continue
                quantity = Decimal(rng.choice([1, 1, 1, 2, 3]))
                price = (unit / quantity).quantize(CENT, ROUND_HALF_UP)
                line = event(
                    "charge",
                    department=department,
                    item_code=f"I{rng.randint(1, 400):04d}",
                    item_name="bench item",
                    category=rng.choice(CATEGORIES),
                    quantity=str(quantity),
                    unit_price=str(price),
                    amount=str(quantity * price),
                )
                charged.append(line)
                posting.append(line)
            postings.append(posting)
            if regroup_at >= remaining and regroup_at != -1:
                drg_code, weight = rng.choice(groups)
                postings.append([event("drg_assigned", drg_code=drg_code)])
                regroup_at = -1
        per_case.append(postings)

    # interleave the cases' postings as a day's stream would, keeping each case's order
    cursors = [0] * cases
    live = list(range(cases))
    stream: list[tuple[int, list[dict[str, Any]]]] = []
    while live:
        pick = rng.randrange(len(live))
        number = live[pick]
        stream.append((number, per_case[number][cursors[number]]))
        cursors[number] += 1
        if cursors[number] == len(per_case[number]):
            live[pick] = live[-1]
            live.pop()
    # a few postings are sent twice (a retry after a lost answer), some time later
    for _ in range(len(stream) // 200):
        where = rng.randrange(len(stream))
        later = min(len(stream), where + rng.randint(1, 50))
        stream.insert(later, stream[where])

    messages: list[Message] = []
    sequences: dict[bytes, int] = {}
    seen: set[str] = set()
    counted = 0
    for _, posting in stream:
        for payload in posting:
            key = case_key(hospital, payload["case_id"])
            if payload["event_id"] in seen:
                sequence = None  # a duplicate: ingest answers it, the ledger has it once
            else:
                seen.add(payload["event_id"])
                sequences[key] = sequences.get(key, 0) + 1
                sequence = sequences[key]
            counted += payload["type"] in ("charge", "credit")
            messages.append(Message(key, orjson.dumps(payload), sequence))
    return Workload(messages, counted, cases, [posting for _, posting in stream])


class _CaseEvents:
    """One case's events: ids in order, each a little later than the one before."""

    def __init__(self, hospital: str, case_id: str, at: datetime, rng: random.Random) -> None:
        self.hospital, self.case_id, self.at, self.rng, self.serial = hospital, case_id, at, rng, 0

    def __call__(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.serial += 1
        self.at += timedelta(seconds=self.rng.randint(30, 900))
        return {
            "event_id": f"{self.case_id}-{self.serial:05d}",
            "type": kind,
            "hospital_id": self.hospital,
            "case_id": self.case_id,
            "occurred_at": self.at.isoformat(),
            **fields,
        }


def _credit(
    event: Callable[..., dict[str, Any]], charge: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    """All of an earlier charge, or one unit of it."""
    quantity = Decimal(charge["quantity"])
    part = quantity if quantity == 1 or rng.random() < 0.5 else Decimal(1)
    price = Decimal(charge["unit_price"])
    return event(
        "credit",
        department=charge["department"],
        item_code=charge["item_code"],
        item_name=charge["item_name"],
        category=charge["category"],
        quantity=str(part),
        unit_price=str(price),
        amount=str(part * price),
    )


def expected(workload: Workload) -> dict[str, ExpectedCase]:
    """Each case's final total, level, events applied and level transitions."""
    groups, base_rates = _standards()
    weight_of = dict(groups)
    cases: dict[str, ExpectedCase] = {}
    scheme_of: dict[str, str] = {}
    drg_of: dict[str, str] = {}
    seen: set[str] = set()
    for message in workload.messages:
        event = orjson.loads(message.value)
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        key = message.key.decode()
        case = cases.setdefault(key, ExpectedCase())
        case.events += 1
        kind = event["type"]
        if kind == "admitted":
            scheme_of[key], drg_of[key] = event["insurance_scheme"], event["drg_code"]
        elif kind == "drg_assigned":
            drg_of[key] = event["drg_code"]
        elif kind == "charge":
            case.total += Decimal(event["amount"])
        elif kind == "credit":
            case.total -= Decimal(event["amount"])
        standard = (weight_of[drg_of[key]] * base_rates[scheme_of[key]]).quantize(
            CENT, ROUND_HALF_UP
        )
        level = level_of(case.total, standard)
        if level != case.level:
            case.transitions.append((case.level, level))
            case.level = level
    return cases


# the shipped rules the recount redoes, by id; their versions and bounds are read from the
# rules themselves, the evaluation is the recount's own
LARGE_ORDER_ID = "large-order"
CATEGORY_SHARE_ID = "category-share"


@dataclass
class ExpectedFindings:
    """The case rules in force (rule id, version) -> severity, and for the rules recounted
    the (case key, period) of every finding they must raise."""

    rules: dict[tuple[str, int], str]
    expected: dict[tuple[str, int], set[tuple[str, str]]]


def expected_findings(workload: Workload, rule_set: RuleSet | None = None) -> ExpectedFindings:
    """The findings of large-order and category-share (those of `rule_set`, by default the
    shipped rules), recounted from the events."""
    if rule_set is None:
        from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files

        rule_set = load_rule_files(DEFAULT_RULES_DIR)
    enabled = [rule for rule in rule_set.case_rules if rule.enabled]
    rules: dict[tuple[str, int], str] = {(rule.id, rule.version): rule.severity for rule in enabled}
    large = next(
        (r for r in enabled if r.id == LARGE_ORDER_ID and isinstance(r, OrderBoundRule)), None
    )
    share = next(
        (r for r in enabled if r.id == CATEGORY_SHARE_ID and isinstance(r, CategoryShareRule)),
        None,
    )
    bounds = {} if large is None else {c.value: b for c, b in large.params.bounds.items()}
    shares_bound = {} if share is None else {c.value: b for c, b in share.params.shares.items()}
    min_total = None if share is None else share.params.min_total
    orders: set[tuple[str, str]] = set()
    shares: set[tuple[str, str]] = set()
    totals: dict[str, Decimal] = {}
    by_category: dict[str, dict[str, Decimal]] = {}
    seen: set[str] = set()
    for message in workload.messages:
        event = orjson.loads(message.value)
        kind = event["type"]
        if event["event_id"] in seen or kind not in ("charge", "credit"):
            continue
        seen.add(event["event_id"])
        key = message.key.decode()
        amount, category = Decimal(event["amount"]), event["category"]
        bound = bounds.get(category)
        if kind == "charge" and bound is not None:
            quantity = Decimal(event["quantity"])
            if (bound.max_amount is not None and amount > bound.max_amount) or (
                bound.max_quantity is not None and quantity > bound.max_quantity
            ):
                orders.add((key, f"order/{event['event_id']}"))
        sign = 1 if kind == "charge" else -1
        total = totals[key] = totals.get(key, Decimal(0)) + sign * amount
        costs = by_category.setdefault(key, {})
        costs[category] = costs.get(category, Decimal(0)) + sign * amount
        if min_total is not None and total > 0 and total >= min_total:
            for watched, limit in shares_bound.items():
                if costs.get(watched, Decimal(0)) > limit * total:
                    shares.add((key, f"stay/{watched}"))
    expected: dict[tuple[str, int], set[tuple[str, str]]] = {}
    if large is not None:
        expected[(large.id, large.version)] = orders
    if share is not None:
        expected[(share.id, share.version)] = shares
    return ExpectedFindings(rules, expected)


def level_of(total: Decimal, standard: Decimal) -> str:
    """The level by the documented default thresholds, compared exactly."""
    if total > standard:
        return "red"
    if total >= Decimal("0.95") * standard:
        return "yellow"
    if total >= Decimal("0.90") * standard:
        return "blue"
    return "none"
