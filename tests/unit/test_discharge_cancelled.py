"""A cancelled discharge (a discharge recorded by mistake) opens the case again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.casecost.apply import apply_event, new_case
from services.casecost.events import Event, parse_event
from services.casecost.state import CaseState
from services.validation import field_errors
from tests.unit.case_events import (
    CASE,
    HOSPITAL,
    NOW,
    admitted,
    at,
    book,
    charge,
    discharge_cancelled,
    discharged,
    raw,
)

PRICE_BOOK = book()  # D1: standard 10000.00 for employee, average stay 7.5 days


def run(events: list[Event], state: CaseState | None = None) -> tuple[CaseState, list[Any]]:
    """Apply events in order: the final state and each event's alerts."""
    state = state or new_case(HOSPITAL, CASE)
    raised = []
    for event in events:
        outcome = apply_event(state, event, PRICE_BOOK, NOW)
        assert not outcome.duplicate
        raised.append(outcome.alerts)
    return state, raised


def test_the_contract_takes_a_cancellation_with_an_optional_reason() -> None:
    event = parse_event(raw("discharge_cancelled", "u1", at(3), reason="recorded by mistake"))
    assert event.type == "discharge_cancelled"
    assert event.reason == "recorded by mistake"  # type: ignore[union-attr]
    plain = parse_event(raw("discharge_cancelled", "u2", at(3)))
    assert plain.reason is None  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as refused:
        parse_event(raw("discharge_cancelled", "u3", at(3), discharged_at=at(3)))
    assert [error.field for error in field_errors(refused.value)] == ["discharged_at"]
    with pytest.raises(ValidationError) as refused:
        parse_event(raw("discharge_cancelled", "u4", at(3), reason="x" * 201))
    assert [error.field for error in field_errors(refused.value)] == ["reason"]


def test_discharge_cancel_then_late_charge_reopens_the_case_with_exact_totals() -> None:
    state, _ = run(
        [
            admitted(),
            charge("c1", "25000.00", occurred_at=at(2)),
            discharged("dis", at(3, 9)),
        ]
    )
    assert state.status == "discharged" and state.ratio_flag == "high"
    assert state.projected_total == Decimal("25000.00")  # a discharged case: what it cost
    assert state.level == "red" and state.alert_level == "red"

    state, raised = run(
        [
            discharge_cancelled("undis", at(3, 11), reason="discharge recorded by mistake"),
            charge("c2", "0.10", occurred_at=at(4)),
            charge("c3", "0.20", occurred_at=at(4)),
        ],
        state,
    )
    assert state.status == "open"
    assert state.discharged_at is None
    assert state.ratio_flag is None  # the high-ratio flag belongs to a discharged case
    assert state.total_cost == Decimal("25000.30")  # exact: 0.1 + 0.2 is 0.30
    assert state.cost_by_category == {"drug": Decimal("25000.30")}
    assert state.events_applied == 6
    # projected again at the case's pace: 25000.30 of drugs over days 1-4, 3.5 days
    # left -> 25000.30 + 6250.075 x 3.5 = 46875.5625 -> 46875.56
    assert state.projected_total == Decimal("46875.56")
    # the level did not move: no level alert, the case is still red
    assert raised == [[], [], []]
    assert state.level == "red" and state.alert_level == "red"
    assert state.to_dict()["discharged_at"] is None


def test_reopening_puts_back_the_open_case_projection() -> None:
    state, _ = run(
        [admitted(), charge("c1", "1000.00", occurred_at=at(2)), discharged("dis", at(3, 9))]
    )
    assert state.projected_total == Decimal("1000.00")
    state, _ = run([discharge_cancelled("undis", at(3, 10))], state)
    # 1000.00 over days 1-3, 4.5 days to go: 1000.00 + 333.33... x 4.5 = 2500.00
    assert state.projected_total == Decimal("2500.00")
    assert state.projected_ratio == Decimal("0.2500")


def test_a_discharge_after_the_cancellation_closes_the_case_again() -> None:
    state, _ = run(
        [
            admitted(),
            charge("c1", "1000.00", occurred_at=at(2)),
            discharged("dis-1", at(3)),
            discharge_cancelled("undis", at(3, 12)),
            charge("c2", "500.25", occurred_at=at(5)),
            discharged("dis-2", at(8)),
        ]
    )
    assert state.status == "discharged"
    assert state.discharged_at == discharged("x", at(8)).discharged_at  # type: ignore[union-attr]
    assert state.total_cost == Decimal("1500.25")
    assert state.ratio_flag == "low"  # below 0.4 x 10000.00
    assert state.projected_total == Decimal("1500.25")


def test_a_cancellation_of_a_case_not_discharged_is_applied_and_changes_nothing() -> None:
    state, _ = run([admitted(), charge("c1", "100.00")])
    before = state.to_dict()
    outcome = apply_event(state, discharge_cancelled("undis", at(4)), PRICE_BOOK, NOW)
    assert not outcome.duplicate and outcome.alerts == []
    assert state.status == "open" and state.events_applied == 3
    after = state.to_dict()
    changed = {key for key in after if after[key] != before[key]}
    # like any event it moves the case's own clock on (and so the projection)
    assert changed == {
        "events_applied",
        "seen",
        "discharged_stamp",
        "last_event_at",
        "projected_total",
        "projected_ratio",
    }
    assert (state.total_cost, state.level, state.discharged_at) == (Decimal("100.00"), "none", None)
    # sent again: a duplicate
    assert apply_event(state, discharge_cancelled("undis", at(4)), PRICE_BOOK, NOW).duplicate


@pytest.mark.parametrize("cancellation_first", [True, False])
def test_the_order_of_arrival_does_not_matter(cancellation_first: bool) -> None:
    mistaken, cancel = discharged("dis-1", at(3)), discharge_cancelled("undis", at(3, 12))
    real = discharged("dis-2", at(9))
    pair = [cancel, mistaken] if cancellation_first else [mistaken, cancel]
    reopened, _ = run([admitted(), *pair])
    assert reopened.status == "open" and reopened.discharged_at is None
    # the real discharge, before or after the two
    closed, _ = run([admitted(), real, *pair])
    assert closed.status == "discharged"
    assert closed.discharged_at == real.discharged_at  # type: ignore[union-attr]


@pytest.mark.parametrize("order", ["discharge first", "cancellation first"])
@pytest.mark.parametrize("discharge_id", ["a", "zzz"])
def test_at_the_same_moment_the_cancellation_wins(order: str, discharge_id: str) -> None:
    discharge, cancel = discharged(discharge_id, at(3)), discharge_cancelled("m", at(3))
    pair = [discharge, cancel] if order == "discharge first" else [cancel, discharge]
    state, _ = run([admitted(), *pair])
    assert state.status == "open"


def test_a_stored_state_keeps_the_cancellation() -> None:
    state, _ = run([admitted(), discharge_cancelled("undis", at(3, 12))])
    stored = orjson.loads(orjson.dumps(state.to_dict()))
    assert stored["discharged_at"] is None
    assert stored["discharged_stamp"] == [2, "2026-03-03T04:00:00+00:00", "undis"]
    restored = CaseState.from_dict(stored)
    # the mistaken discharge it withdraws arrives late, after a restart
    restored, _ = run([discharged("dis-1", at(3))], restored)
    assert restored.status == "open"


def test_a_cancelled_discharge_does_not_start_a_new_forecast_episode() -> None:
    state, raised = run(
        [
            admitted(),
            charge("a", "4500.00", occurred_at=at(3)),  # projected 11250.00: fires
            discharged("dis", at(3, 14)),
            discharge_cancelled("undis", at(3, 15)),  # projected 11250.00 again
            charge("b", "100.00", occurred_at=at(3, 16)),  # 11500.00: the same episode
        ]
    )
    kinds = [[alert["kind"] for alert in alerts] for alerts in raised]
    assert kinds == [[], ["forecast"], [], [], []]
    assert state.forecast_fired and state.forecast_seq == 1
    assert state.projected_total is not None and state.projected_total > Decimal("10000.00")
