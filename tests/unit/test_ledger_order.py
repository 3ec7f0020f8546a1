"""Events applied in ledger order whatever order the stream delivers them in."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.apply import Outcome, Reprice, new_case, receive, release_held
from services.casecost.events import Event
from services.casecost.state import CaseState
from tests.unit.case_events import CASE, HOSPITAL, NOW, book, catalogue
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


def _admitted(occurred_at: str = "2026-03-01T08:00:00+08:00") -> dict[str, Any]:
    return {
        "event_id": "adm",
        "type": "admitted",
        "hospital_id": HOSPITAL,
        "case_id": CASE,
        "occurred_at": occurred_at,
        "department": "CARD",
        "drg_code": "D1",
        "insurance_scheme": "employee",
        "admitted_at": occurred_at,
    }


def test_an_event_applied_before_it_was_numbered_still_moves_the_sequence_on() -> None:
    adm, c1, c2 = parse_all([_admitted(), _charge("c1", "9500.00"), _charge("c2", "1.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(1, adm)])
    first = receive(state, c1, None, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert [alert["level"] for alert in first.alerts] == ["yellow"]
    # the same event, now with its ledger number: counted once, yet the state changed
    # (the sequence moved on) and must be saved, so the next event need not wait
    again = receive(first.state, c1, 2, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert again.changed and not again.duplicate
    assert again.alerts == first.alerts
    assert again.state.next_sequence == 3 and again.state.events_applied == 2
    after = receive(again.state, c2, 3, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert after.state.held == {} and after.state.total_cost == Decimal("9501.00")


def test_an_unsequenced_event_raises_its_alert_at_once_even_while_others_wait() -> None:
    adm, c1, c3 = parse_all([_admitted(), _charge("c1", "9500.00"), _charge("c3", "1.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(1, adm), (3, c3)])
    outcome = receive(state, c1, None, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert outcome.changed and [alert["level"] for alert in outcome.alerts] == ["yellow"]
    assert list(outcome.state.held) == [3] and outcome.state.next_sequence == 2


@pytest.mark.parametrize("sequence", [None, 3, 5])
def test_a_reprice_applies_at_once_and_raises_its_alert_even_while_events_wait(
    sequence: int | None,
) -> None:
    # a command carries no ledger number of its own; whatever it is handed, it never waits
    unpriced_book = book(catalogue(groups={"OTHER": ("1", None)}))
    adm, c1, c4 = parse_all([_admitted(), _charge("c1", "9500.00"), _charge("c4", "1.00")])
    state = new_case(HOSPITAL, CASE)
    for number, event in [(1, adm), (2, c1), (4, c4)]:
        state = receive(state, event, number, unpriced_book, NOW, gap_timeout=GAP).state
    assert state.level == "unpriced" and list(state.held) == [4]
    reprice = Reprice("reprice-7", HOSPITAL, CASE, NOW)
    outcome = receive(state, reprice, sequence, PRICE_BOOK, NOW, gap_timeout=GAP)
    assert outcome.changed and outcome.state.level == "yellow"
    assert [(a["level"], a["event_id"]) for a in outcome.alerts] == [("yellow", "reprice-7")]
    assert list(outcome.state.held) == [4] and outcome.state.next_sequence == 3


def test_an_event_late_for_its_slot_raises_its_alert_when_it_arrives() -> None:
    adm, c2 = parse_all([_admitted(), _charge("c2", "9000.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(2, c2)])
    released = release_held(state, PRICE_BOOK, NOW + GAP)
    assert released.released == (1,) and released.state.level == "unpriced"
    late = receive(released.state, adm, 1, PRICE_BOOK, NOW + GAP, gap_timeout=GAP)
    assert late.changed and [alert["level"] for alert in late.alerts] == ["blue"]
    assert late.state.next_sequence == 3


def test_a_redelivered_held_event_after_the_gap_timeout_releases_the_gap() -> None:
    c1, c2 = parse_all([_charge("c1", "1.00"), _charge("c2", "2.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(2, c2)])
    early = receive(state, c2, 2, PRICE_BOOK, NOW + GAP - timedelta(seconds=1), gap_timeout=GAP)
    assert early.duplicate and list(early.state.held) == [2]
    outcome = receive(early.state, c2, 2, PRICE_BOOK, NOW + GAP, gap_timeout=GAP)
    assert outcome.changed and outcome.released == (1,)
    assert outcome.state.total_cost == 2 and outcome.state.next_sequence == 3
    assert outcome.state.held == {} and outcome.state.held_since is None


def test_the_gap_timer_runs_from_the_first_early_arrival() -> None:
    c3, c4, c5 = parse_all([_charge("c3", "1.00"), _charge("c4", "2.00"), _charge("c5", "4.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(3, c3), (4, c4)], minutes_apart=3)
    assert state.held_since == NOW and sorted(state.held) == [3, 4]
    # more early arrivals do not restart the wait: five minutes after the first, it ends
    outcome = receive(state, c5, 5, PRICE_BOOK, NOW + GAP, gap_timeout=GAP)
    assert outcome.released == (1, 2) and outcome.state.total_cost == 7
    assert outcome.state.held == {} and outcome.state.held_since is None


def test_a_gap_waits_its_full_timeout_and_not_a_moment_less() -> None:
    c1, c3 = parse_all([_charge("c1", "1.00"), _charge("c3", "4.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(3, c3)])
    waiting = redeliver_first_held(state, NOW + GAP - timedelta(microseconds=1))
    assert waiting.duplicate and list(waiting.state.held) == [3]
    assert waiting.state.held_since == NOW
    due = redeliver_first_held(waiting.state, NOW + GAP)
    assert due.released == (1, 2) and due.state.total_cost == 4


def test_a_partial_drain_starts_the_wait_for_the_next_gap_afresh() -> None:
    c1, c2, c4, c5 = parse_all(
        [_charge("c1", "1.00"), _charge("c2", "2.00"), _charge("c4", "4.00"), _charge("c5", "8.00")]
    )
    state, _ = deliver(new_case(HOSPITAL, CASE), [(2, c2), (4, c4)])
    assert state.held_since == NOW
    filled = receive(state, c1, 1, PRICE_BOOK, NOW + timedelta(minutes=4), gap_timeout=GAP)
    # 1 and 2 applied; 4 now waits for 3, and that wait began when 2 was applied
    assert filled.state.total_cost == 3 and list(filled.state.held) == [4]
    assert filled.state.held_since == NOW + timedelta(minutes=4)
    later = receive(filled.state, c5, 5, PRICE_BOOK, NOW + timedelta(minutes=6), gap_timeout=GAP)
    assert later.released == () and sorted(later.state.held) == [4, 5]
    due = receive(later.state, c5, 5, PRICE_BOOK, NOW + timedelta(minutes=9), gap_timeout=GAP)
    assert due.released == (3,) and due.state.total_cost == 15


def test_held_events_and_the_start_of_their_wait_survive_a_round_trip() -> None:
    c3, c4 = parse_all([_charge("c3", "1.00"), _charge("c4", "2.00")])
    state, _ = deliver(new_case(HOSPITAL, CASE), [(3, c3), (4, c4)], minutes_apart=2)
    restored = CaseState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert restored.held == state.held and restored.held_since == NOW
    assert restored.next_sequence == 1
    due = redeliver_first_held(restored, NOW + GAP)
    assert due.released == (1, 2) and due.state.total_cost == 3


def redeliver_first_held(state: CaseState, now: datetime) -> Outcome:
    """What the worker's next delivery for the case does: drain what the wait allows."""
    (copy,) = parse_all([next(iter(state.held.values()))])
    return receive(state, copy, min(state.held), PRICE_BOOK, now, gap_timeout=GAP)
