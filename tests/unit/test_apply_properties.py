"""Properties of apply_event over generated cases: recount, order independence, alert chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.apply import apply_event, new_case
from services.casecost.events import Event, parse_event
from services.casecost.pricing import Thresholds
from services.casecost.state import CaseState
from tests.unit.case_events import CASE, HOSPITAL, NOW, book

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
PRICE_BOOK = book(
    thresholds={("*", "D2"): Thresholds(Decimal("0.5"), Decimal("0.6"), Decimal("0.7"))}
)
START = datetime(2026, 3, 1, tzinfo=UTC)
CATEGORIES = ["drug", "consumable", "exam", "lab", "procedure", "bed", "nursing", "other"]
OFFSETS = [timezone(timedelta(hours=8)), UTC, timezone(timedelta(hours=-5))]
DRGS = st.sampled_from(["D1", "D2", "OVR", "UNKNOWN"])
COMPARED = (
    "total_cost",
    "cost_by_category",
    "department",
    "drg_code",
    "insurance_scheme",
    "level",
    "standard_cost",
    "events_applied",
    "ratio",
    "ratio_flag",
    "admitted_at",
    "discharged_at",
    "drg_name",
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    moment = START + timedelta(
        minutes=draw(st.integers(0, 60 * 24 * 10)),
        microseconds=draw(st.sampled_from([0, 0, 1, 500_000])),
    )
    return moment.astimezone(draw(st.sampled_from(OFFSETS))).isoformat()


@st.composite
def cost_line(draw: st.DrawFn, kind: str, event_id: str) -> dict[str, Any]:
    quantity = draw(st.sampled_from(["1", "2", "0.5", "3", "1.25"]))
    places = draw(st.sampled_from([0, 2, 4]))
    unit_price = draw(
        st.decimals(
            min_value=0, max_value=4000, places=places, allow_nan=False, allow_infinity=False
        )
    )
    amount = (Decimal(quantity) * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "event_id": event_id,
        "type": kind,
        "hospital_id": HOSPITAL,
        "case_id": CASE,
        "occurred_at": draw(timestamps()),
        "department": draw(st.sampled_from(["CARD", "LAB"])),
        "item_code": draw(st.sampled_from(["STENT", "SALINE", "CT", "BED"])),
        "item_name": "item",
        "category": draw(st.sampled_from(CATEGORIES)),
        "quantity": quantity,
        "unit_price": str(unit_price),
        "amount": str(amount),
    }


@st.composite
def case_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The raw events of one case, each with a unique event_id."""
    events: list[dict[str, Any]] = []
    base = {"hospital_id": HOSPITAL, "case_id": CASE}
    if draw(st.booleans()) or draw(st.booleans()):
        admitted: dict[str, Any] = {
            **base,
            "event_id": "adm",
            "type": "admitted",
            "occurred_at": draw(timestamps()),
            "department": draw(st.sampled_from(["CARD", "SURG"])),
            "insurance_scheme": draw(st.sampled_from(["employee", "resident", "other"])),
            "admitted_at": draw(timestamps()),
        }
        drg = draw(st.none() | DRGS)
        if drg is not None:
            admitted["drg_code"] = drg
        events.append(admitted)
    for n in range(draw(st.integers(0, 3))):
        events.append(
            {
                **base,
                "event_id": f"drg-{n}",
                "type": "drg_assigned",
                "occurred_at": draw(timestamps()),
                "drg_code": draw(DRGS),
            }
        )
    for n in range(draw(st.integers(0, 2))):
        events.append(
            {
                **base,
                "event_id": f"move-{n}",
                "type": "transferred",
                "occurred_at": draw(timestamps()),
                "department": draw(st.sampled_from(["ICU", "WARD"])),
            }
        )
    for n in range(draw(st.integers(0, 10))):
        events.append(draw(cost_line("charge", f"ch-{n}")))
    for n in range(draw(st.integers(0, 4))):
        events.append(draw(cost_line("credit", f"cr-{n}")))
    for n in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        when = draw(timestamps())
        events.append(
            {
                **base,
                "event_id": "dis" if n == 0 else f"dis-{n}",
                "type": "discharged",
                "occurred_at": when,
                "discharged_at": when,
            }
        )
    for n in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        events.append(
            {
                **base,
                "event_id": f"undis-{n}",
                "type": "discharge_cancelled",
                "occurred_at": draw(timestamps()),
            }
        )
    return events


def parse_all(raws: list[dict[str, Any]]) -> list[Event]:
    return [parse_event(raw) for raw in raws]


def fold(events: list[Event], round_trip: bool = False) -> tuple[CaseState, list[Any]]:
    """Apply events in order; return the final state and each outcome's (duplicate, alerts)."""
    state = new_case(HOSPITAL, CASE)
    outcomes = []
    for event in events:
        if round_trip:
            state = CaseState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
        outcome = apply_event(state, event, PRICE_BOOK, NOW)
        state = outcome.state
        outcomes.append((outcome.duplicate, outcome.alerts))
    return state, outcomes


def summary(state: CaseState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in COMPARED} | {"status": state.status}


@PROPERTY_SETTINGS
@given(case_events())
def test_totals_reconcile_with_an_independent_recount(raws: list[dict[str, Any]]) -> None:
    state, _ = fold(parse_all(raws))
    total = Decimal(0)
    by_category: dict[str, Decimal] = {}
    for raw in raws:
        if raw["type"] not in ("charge", "credit"):
            continue
        amount = Decimal(raw["amount"]) * (1 if raw["type"] == "charge" else -1)
        total += amount
        by_category[raw["category"]] = by_category.get(raw["category"], Decimal(0)) + amount
    assert state.total_cost == total
    assert state.cost_by_category == by_category
    assert sum(state.cost_by_category.values(), Decimal(0)) == state.total_cost
    assert sum((item.amount for item in state.items.values()), Decimal(0)) == total
    assert state.events_applied == len(raws)
    assert state.to_dict()["total_cost"] == str(total)


@PROPERTY_SETTINGS
@given(case_events(), st.data())
def test_any_order_with_duplicates_gives_the_same_case(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = parse_all(raws)
    reference, _ = fold(events)
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
    shuffled = data.draw(st.permutations(events + repeats))
    state, outcomes = fold(shuffled)
    assert summary(state) == summary(reference)
    assert state.to_dict()["total_cost"] == reference.to_dict()["total_cost"]
    assert state.seen == reference.seen
    assert sum(duplicate for duplicate, _ in outcomes) == len(repeats)
    if state.level != "unpriced":
        assert state.alert_level == state.level


@PROPERTY_SETTINGS
@given(case_events(), st.data())
def test_level_alerts_form_a_chain(raws: list[dict[str, Any]], data: st.DataObject) -> None:
    events = parse_all(raws)
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    state, outcomes = fold(data.draw(st.permutations(events + repeats)))
    raised: list[dict[str, Any]] = []
    for duplicate, alerts in outcomes:
        alerts = [alert for alert in alerts if alert["kind"] == "level"]
        if duplicate:
            # a redelivery hands back only alerts raised before, never a new one
            assert all(alert in raised for alert in alerts)
        else:
            assert len(alerts) <= 1
            raised.extend(alerts)
    previous = "none"
    for alert in raised:
        assert alert["previous_level"] == previous
        assert alert["level"] != previous
        expected = (
            "resolved"
            if alert["level"] == "none"
            else "escalated"
            if ["none", "blue", "yellow", "red"].index(alert["level"])
            > ["none", "blue", "yellow", "red"].index(previous)
            else "de-escalated"
        )
        assert alert["transition"] == expected
        previous = alert["level"]
    assert state.alert_level == previous
    assert [alert["sequence"] for alert in raised] == list(range(1, len(raised) + 1))
    assert len({alert["alert_id"] for alert in raised}) == len(raised)


@PROPERTY_SETTINGS
@given(case_events(), st.data())
def test_a_round_trip_at_every_step_changes_nothing(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = parse_all(raws)
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    order = data.draw(st.permutations(events + repeats))
    direct, direct_outcomes = fold(order)
    replayed, replayed_outcomes = fold(order, round_trip=True)
    assert orjson.dumps(replayed.to_dict()) == orjson.dumps(direct.to_dict())
    assert replayed_outcomes == direct_outcomes


@PROPERTY_SETTINGS
@given(case_events(), st.data())
def test_the_latest_discharge_or_cancellation_decides_the_status(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = parse_all(raws)
    state, _ = fold(data.draw(st.permutations(events)))
    # independent recount: order by the moment, a cancellation after a discharge at the
    # same moment, then the event id; the last one says whether the case is discharged
    register = sorted(
        (
            datetime.fromisoformat(raw["occurred_at"]),
            raw["type"] == "discharge_cancelled",
            raw["event_id"],
            raw,
        )
        for raw in raws
        if raw["type"] in ("discharged", "discharge_cancelled")
    )
    last = register[-1][3] if register else None
    if last is None or last["type"] == "discharge_cancelled":
        assert state.status == "open"
        assert state.discharged_at is None
        assert state.ratio_flag is None
    else:
        assert state.status == "discharged"
        assert state.discharged_at == datetime.fromisoformat(last["discharged_at"])
