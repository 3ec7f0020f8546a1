"""Events applied in ledger order whatever order the stream delivers them in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.apply import Outcome, new_case, receive, release_held
from services.casecost.events import Event
from services.casecost.state import CaseState
from tests.unit.case_events import CASE, HOSPITAL, NOW
from tests.unit.test_apply_properties import (
    PRICE_BOOK,
    case_events,
    parse_all,
    summary,
)

GAP = timedelta(minutes=5)


def deliver(
    state: CaseState,
    deliveries: list[tuple[int, Event]],
    *,
    round_trip: bool = False,
    minutes_apart: int = 0,
) -> tuple[CaseState, list[Outcome]]:
    outcomes = []
    for step, (sequence, event) in enumerate(deliveries):
        if round_trip:
            state = CaseState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
        now = NOW + timedelta(minutes=minutes_apart * step)
        outcome = receive(state, event, sequence, PRICE_BOOK, now, gap_timeout=GAP)
        state = outcome.state
        outcomes.append(outcome)
    return state, outcomes


def raised(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Alerts as first raised (a redelivery may hand earlier ones back), raise time aside."""
    seen: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        for alert in outcome.alerts:
            seen.setdefault(alert["alert_id"], {k: v for k, v in alert.items() if k != "raised_at"})
    return list(seen.values())


@settings(max_examples=300, deadline=None)
@given(case_events(), st.data())
def test_any_delivery_order_gives_the_ledger_order_state_and_alerts(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = parse_all(raws)
    numbered = list(enumerate(events, start=1))
    in_order, in_order_outcomes = deliver(new_case(HOSPITAL, CASE), numbered)
    repeats = data.draw(st.lists(st.sampled_from(numbered), max_size=8)) if numbered else []
    shuffled = data.draw(st.permutations(numbered + repeats))
    state, outcomes = deliver(
        new_case(HOSPITAL, CASE), shuffled, round_trip=data.draw(st.booleans())
    )
    assert summary(state) == summary(in_order)
    assert raised(outcomes) == raised(in_order_outcomes)
    assert state.held == {} and state.held_since is None
    assert state.next_sequence == len(events) + 1


def test_an_early_event_waits_for_the_gap_then_both_apply_in_order() -> None:
    a, b, c = parse_all(
        [
            {"event_id": "adm", "type": "admitted", "hospital_id": HOSPITAL, "case_id": CASE,
             "occurred_at": "2026-03-01T08:00:00+08:00", "department": "CARD",
             "drg_code": "D1", "insurance_scheme": "employee",
             "admitted_at": "2026-03-01T08:00:00+08:00"},
            _charge("c1", "9500.00"),
            _charge("c2", "1000.00"),
        ]
    )  # fmt: skip
    state = new_case(HOSPITAL, CASE)
    state, outcomes = deliver(state, [(1, a), (3, c)])
    assert state.total_cost == 0 and list(state.held) == [3] and state.held_since == NOW
    assert outcomes[1].changed and not outcomes[1].alerts
    state, outcomes = deliver(state, [(2, b)])
    # 9500 (blue) then 10500 (red): two alerts, in ledger order
    assert [alert["level"] for alert in outcomes[0].alerts] == ["yellow", "red"]
    assert state.total_cost == 10500 and state.held == {} and state.next_sequence == 4


def test_a_held_event_delivered_twice_changes_nothing() -> None:
    (c2,) = parse_all([_charge("c2", "10.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(2, c2)])
    state, outcomes = deliver(state, [(2, c2)])
    assert outcomes[0].duplicate and not outcomes[0].changed and list(state.held) == [2]


def test_after_the_gap_timeout_held_events_apply_and_the_missing_one_still_counts_once() -> None:
    c1, c2, c3 = parse_all([_charge("c1", "1.00"), _charge("c2", "2.00"), _charge("c3", "4.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(2, c2)])
    assert state.total_cost == 0
    late = NOW + GAP
    outcome = receive(state, c3, 3, PRICE_BOOK, late, gap_timeout=GAP)
    assert outcome.released == (1,)
    assert outcome.state.total_cost == 6 and outcome.state.next_sequence == 4
    # sequence 1 turns up after its slot passed: counted, once
    state = receive(outcome.state, c1, 1, PRICE_BOOK, late, gap_timeout=GAP).state
    again = receive(state, c1, 1, PRICE_BOOK, late, gap_timeout=GAP)
    assert state.total_cost == 7 and again.duplicate and again.state.events_applied == 3


def test_release_command_applies_what_is_held() -> None:
    (c3,) = parse_all([_charge("c3", "4.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(3, c3)])
    outcome = release_held(state, PRICE_BOOK, NOW)
    assert outcome.released == (1, 2) and outcome.state.total_cost == 4
    assert release_held(outcome.state, PRICE_BOOK, NOW).duplicate


def test_unsequenced_events_apply_at_once() -> None:
    (c1,) = parse_all([_charge("c1", "3.00")])
    outcome = receive(new_case(HOSPITAL, CASE), c1, None, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert outcome.state.total_cost == 3 and outcome.state.next_sequence == 1


def _charge(event_id: str, amount: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "charge",
        "hospital_id": HOSPITAL,
        "case_id": CASE,
        "occurred_at": "2026-03-01T10:00:00+08:00",
        "department": "CARD",
        "item_code": f"ITEM-{event_id}",
        "item_name": "item",
        "category": "drug",
        "quantity": "1",
        "unit_price": amount,
        "amount": amount,
    }
