"""The projection to discharge and the forecast alert: constructed stays and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.apply import FORECAST_ALERT_MIN_FULL_DAYS, apply_event, new_case
from services.casecost.events import Event
from services.casecost.forecast import project_to_discharge
from services.casecost.pricing import PriceBook
from services.casecost.state import CaseState
from tests.unit.case_events import (
    CASE,
    HOSPITAL,
    NOW,
    admitted,
    at,
    book,
    catalogue,
    charge,
    credit,
    discharged,
)
from tests.unit.test_apply_properties import PRICE_BOOK, PROPERTY_SETTINGS, case_events, parse_all
from tests.unit.test_ledger_order import deliver, raised

D1 = date(2026, 3, 1)
STANDARD = Decimal("10000.00")


def projected(
    total: str,
    *,
    one_off: str = "0",
    latest: date = D1,
    avg: str | None = "5",
    standard: Decimal | None = STANDARD,
    discharged: bool = False,
) -> Decimal | None:
    projection = project_to_discharge(
        total=Decimal(total),
        standard=standard,
        avg_los_days=None if avg is None else Decimal(avg),
        admission_day=D1,
        latest_day=latest,
        one_off=Decimal(one_off),
        discharged=discharged,
    )
    return None if projection is None else projection.total


# --- constructed stays ----------------------------------------------------------------------


def test_a_one_day_stay_runs_its_first_day_over_the_average_stay() -> None:
    # 1 day observed at 1000.00 (1200.00 less a 200.00 procedure), 4 more days to go
    assert projected("1200.00", one_off="200.00") == Decimal("5200.00")


def test_the_latest_day_counts_as_observed() -> None:
    # admitted on the 1st, latest event on the 3rd: 3 days of charges, 4.5 days to go
    assert projected("3000.00", latest=date(2026, 3, 3), avg="7.5") == Decimal("7500.00")


def test_a_stay_past_its_average_is_projected_at_its_cost() -> None:
    assert projected("9100.00", latest=date(2026, 3, 10), avg="7.5") == Decimal("9100.00")


def test_the_admission_days_operation_is_paid_once_not_every_day() -> None:
    # 30000 operation + 2000 drugs on day 1, 2000 on day 2: pace 2000/day, 4 days to go
    assert projected(
        "34000.00", one_off="30000.00", latest=date(2026, 3, 2), avg="6", standard=Decimal("40000")
    ) == Decimal("42000.00")


def test_the_pace_never_goes_below_zero() -> None:
    assert projected("100.00", one_off="500.00", latest=date(2026, 3, 2)) == Decimal("100.00")


def test_the_projection_rounds_half_up_to_the_cent() -> None:
    # 100.00 / 3 days x 0.5 day left = 16.666..., 100.00 + 16.67
    assert projected("100.00", latest=date(2026, 3, 3), avg="3.5") == Decimal("116.67")


def test_no_projection_without_an_average_stay_or_a_standard() -> None:
    assert projected("1000.00", avg=None) is None
    assert projected("1000.00", standard=None) is None


def test_a_discharged_case_is_projected_at_what_it_cost() -> None:
    assert projected("1000.00", discharged=True) == Decimal("1000.00")


# --- through apply_event ------------------------------------------------------------------


def run(events: list[Event], price_book: PriceBook | None = None) -> tuple[CaseState, list[Any]]:
    state = new_case(HOSPITAL, CASE)
    alerts: list[dict[str, Any]] = []
    for event in events:
        alerts.extend(apply_event(state, event, price_book or book(), NOW).alerts)
    return state, alerts


def forecasts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [alert for alert in alerts if alert["kind"] == "forecast"]


def test_the_state_projects_with_its_own_clock_and_excludes_one_offs() -> None:
    # D1 (avg 7.5 days, standard 10000.00): admitted on the 1st; a 2000.00 procedure and
    # 300.00 of drugs that day, 300.00 on the 2nd: 2 days observed, pace 300/day
    state, _ = run(
        [
            admitted(),
            charge("op", "2000.00", category="procedure", occurred_at=at(1, 9)),
            charge("d1", "300.00", occurred_at=at(1, 12)),
            charge("d2", "300.00", occurred_at=at(2, 12)),
        ]
    )
    assert state.total_cost == Decimal("2600.00")
    assert state.projected_total == Decimal("4250.00")  # 2600 + 300 x 5.5
    assert state.projected_ratio == Decimal("0.4250")
    assert state.cost_by_day == {
        "2026-03-01": Decimal("2300.00"),
        "2026-03-02": Decimal("300.00"),
    }


def test_an_operation_later_in_the_stay_is_paid_once_too() -> None:
    # 300.00 of drugs a day; on the 3rd a 6000.00 operation and a 4000.00 implant: the pace
    # stays 300/day (900 over 3 days), 4.5 days to go: 10900 + 1350
    state, _ = run(
        [
            admitted(),
            charge("d1", "300.00", occurred_at=at(1, 12)),
            charge("d2", "300.00", occurred_at=at(2, 12)),
            charge("d3", "300.00", occurred_at=at(3, 12)),
            charge("op", "6000.00", category="procedure", occurred_at=at(3, 9)),
            charge("implant", "4000.00", category="consumable", occurred_at=at(3, 9)),
        ]
    )
    assert state.total_cost == Decimal("10900.00")
    assert state.projected_total == Decimal("12250.00")


def test_a_cost_line_belongs_to_the_hospitals_local_day() -> None:
    # 16:30 UTC is half past midnight in Shanghai: the 2nd, not the 1st
    state, _ = run([admitted(), charge("late", "10.00", occurred_at="2026-03-01T16:30:00Z")])
    assert state.cost_by_day == {"2026-03-02": Decimal("10.00")}


def test_a_credit_lowers_its_day_its_orderer_and_the_projection() -> None:
    state, _ = run(
        [
            admitted(),
            charge("a", "1000.00", occurred_at=at(2), ordered_by="dr-wang"),
            charge("b", "500.00", occurred_at=at(2)),
            credit("c", "400.00", occurred_at=at(3), ordered_by="dr-wang"),
        ]
    )
    assert state.cost_by_day == {"2026-03-02": Decimal("1500.00"), "2026-03-03": Decimal("-400.00")}
    assert state.cost_by_orderer == {"dr-wang": Decimal("600.00"), "": Decimal("500.00")}
    # 1100.00 over 3 days observed, 4.5 to go
    assert state.projected_total == Decimal("2750.00")


def test_an_unpriced_case_has_no_projection() -> None:
    state, _ = run([admitted(drg_code="NOPE"), charge("a", "100.00")])
    assert state.projected_total is None and state.projected_ratio is None


def test_the_forecast_alert_fires_when_the_projection_crosses_red_below_blue() -> None:
    state, alerts = run([admitted(), charge("a", "4500.00", occurred_at=at(3))])
    # 4500 over 3 days observed: 4500 + 1500 x 4.5 = 11250.00 > 10000.00, cost at 45%
    (alert,) = alerts
    assert alert["kind"] == "forecast"
    assert (alert["level"], alert["previous_level"], alert["transition"]) == (
        "red",
        "none",
        "projected",
    )
    assert alert["projected_total"] == "11250.00" and alert["projected_ratio"] == "1.1250"
    assert alert["total_cost"] == "4500.00" and alert["ratio"] == "0.4500"
    assert alert["event_id"] == "a"
    assert state.level == "none" and state.forecast_fired


def test_level_alerts_carry_no_projection() -> None:
    _, alerts = run([admitted(), charge("a", "9500.00", occurred_at=at(1, 9))])
    assert [(a["kind"], a["projected_total"], a["projected_ratio"]) for a in alerts] == [
        ("level", None, None)
    ]


def test_no_forecast_alert_before_two_full_days_of_the_stay() -> None:
    state, alerts = run([admitted(), charge("a", "6000.00", occurred_at=at(1, 20))])
    assert state.projected_total == Decimal("45000.00") and alerts == []
    # the next day is not enough (admission work-up still weighs on the pace); the day
    # after that lets it fire
    _, later = run(
        [
            admitted(),
            charge("a", "6000.00", occurred_at=at(1, 20)),
            charge("b", "1.00", occurred_at=at(2)),
            charge("c", "1.00", occurred_at=at(3)),
        ]
    )
    assert [a["event_id"] for a in forecasts(later)] == ["c"]


def test_no_forecast_alert_once_the_cost_has_reached_blue() -> None:
    _, alerts = run(
        [
            admitted(),
            charge("a", "9000.00", occurred_at=at(1, 9)),
            charge("b", "100.00", occurred_at=at(2)),
        ]
    )
    assert [a["kind"] for a in alerts] == ["level"]


def test_one_forecast_per_episode_and_a_new_episode_after_the_projection_falls_below_blue() -> None:
    _, alerts = run(
        [
            admitted(),
            charge("a", "4500.00", occurred_at=at(3)),  # 11250.00: fires
            credit("b", "700.00", occurred_at=at(3, 11)),  # 3800 -> 9500.00, above blue
            charge("c", "700.00", occurred_at=at(3, 12)),  # 11250.00 again: same episode
            credit("d", "1500.00", occurred_at=at(3, 13)),  # 3000 -> 7500.00: episode ends
            charge("e", "1500.00", occurred_at=at(3, 14)),  # red again: fires again
        ]
    )
    fired = forecasts(alerts)
    assert [a["event_id"] for a in fired] == ["a", "e"]
    assert len({a["alert_id"] for a in fired}) == 2


def test_a_duplicate_hands_back_the_forecast_alert_and_raises_no_new_one() -> None:
    state, alerts = run([admitted(), charge("a", "4500.00", occurred_at=at(3))])
    assert forecasts(alerts)
    again = apply_event(state, charge("a", "4500.00", occurred_at=at(3)), book(), NOW)
    assert again.duplicate and again.alerts == alerts


def test_forecast_alert_ids_are_deterministic_and_distinct_from_level_alert_ids() -> None:
    events = [
        admitted(),
        charge("a", "4500.00", occurred_at=at(3)),
        charge("b", "5000.00", occurred_at=at(4)),
    ]
    _, first = run(events)
    _, second = run(events)
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in second]
    assert [a["kind"] for a in first] == ["forecast", "level"]
    assert len({a["alert_id"] for a in first}) == 2


def test_a_discharged_case_raises_no_forecast_alert() -> None:
    _, alerts = run(
        [
            admitted(),
            discharged(discharged_at=at(2, 8)),
            charge("a", "3000.00", occurred_at=at(2)),
        ]
    )
    assert forecasts(alerts) == []


def test_a_case_without_an_average_stay_is_never_forecast() -> None:
    known = catalogue()
    groups = {code: replace(group, avg_los_days=None) for code, group in known.groups.items()}
    price_book = book(replace(known, groups=groups))
    state, alerts = run([admitted(), charge("a", "3000.00", occurred_at=at(2))], price_book)
    assert state.projected_total is None and alerts == []


# --- the state on the wire ---------------------------------------------------------------


def test_the_new_fields_round_trip_and_old_states_decode_without_them() -> None:
    state, _ = run(
        [admitted(), charge("a", "3000.00", occurred_at=at(2), ordered_by="dr-li")],
    )
    data = orjson.loads(orjson.dumps(state.to_dict()))
    assert CaseState.from_dict(data) == state
    old = {
        key: value
        for key, value in data.items()
        if key
        not in {
            "cost_by_day",
            "cost_by_orderer",
            "projected_total",
            "projected_ratio",
            "forecast_fired",
            "forecast_seq",
        }
    }
    restored = CaseState.from_dict(old)
    assert restored.cost_by_day == {} and restored.projected_total is None
    assert not restored.forecast_fired and restored.forecast_seq == 0
    # the next event prices it again, from the total
    outcome = apply_event(restored, charge("b", "1.00", occurred_at=at(2)), book(), NOW)
    assert outcome.state.projected_total == Decimal("11253.75")  # 3001 + 1500.50 x 5.5
    assert outcome.state.cost_by_day == {"2026-03-02": Decimal("1.00")}


# --- properties ---------------------------------------------------------------------------


def _projected_level(state: CaseState) -> str | None:
    if state.projected_total is None or state.standard_cost is None:
        return None
    thresholds = PRICE_BOOK.thresholds_for(state.hospital_id, state.drg_code)
    return thresholds.level_for(state.projected_total, state.standard_cost)


def _full_days(state: CaseState) -> int:
    start = state.admitted_at or state.first_event_at
    assert start is not None and state.last_event_at is not None
    return (PRICE_BOOK.local_day(state.last_event_at) - PRICE_BOOK.local_day(start)).days


@st.composite
def stays(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The events of a stay whose projection often crosses red below blue: admitted on
    1 March (D1: standard 10000.00, 7.5 days), charges over its first four days, some
    credits, perhaps a regroup (D2: 20000.00, red above 70%) and a discharge."""
    base = {"hospital_id": HOSPITAL, "case_id": CASE}
    events: list[dict[str, Any]] = [
        {
            **base,
            "event_id": "adm",
            "type": "admitted",
            "occurred_at": at(1, 8),
            "admitted_at": at(1, 8),
            "department": "CARD",
            "insurance_scheme": "employee",
            "drg_code": "D1",
        }
    ]
    for n in range(draw(st.integers(1, 6))):
        kind = "credit" if n and draw(st.integers(0, 5)) == 0 else "charge"
        amount = draw(st.sampled_from(["300.00", "1500.00", "2500.00", "4000.00"]))
        events.append(
            {
                **base,
                "event_id": f"{kind}-{n}",
                "type": kind,
                # later days weigh more: a forecast waits for two full days of the stay
                "occurred_at": at(
                    draw(st.sampled_from([1, 2, 3, 3, 4, 4])), draw(st.integers(0, 23))
                ),
                "department": "CARD",
                "item_code": f"I{n}",
                "item_name": "item",
                "category": draw(st.sampled_from(["drug", "procedure", "bed", "consumable"])),
                "quantity": "1",
                "unit_price": amount,
                "amount": amount,
            }
        )
    if draw(st.booleans()):
        events.append(
            {
                **base,
                "event_id": "regroup",
                "type": "drg_assigned",
                "occurred_at": at(draw(st.integers(1, 7)), 12),
                "drg_code": "D2",
            }
        )
    if draw(st.integers(0, 3)) == 0:
        when = at(draw(st.integers(2, 8)), 18)
        events.append(
            {
                **base,
                "event_id": "dis",
                "type": "discharged",
                "occurred_at": when,
                "discharged_at": when,
            }
        )
    return events


@PROPERTY_SETTINGS
@given(st.one_of(case_events(), stays()), st.data())
def test_a_forecast_alert_fires_exactly_once_per_episode_in_any_order(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Whatever the order and duplication: a forecast alert fires on the first event of an
    episode (from the projection's crossing of red until it falls below blue) at which the
    case is open, below blue and two full days in, and on no other; a duplicate raises
    nothing new."""
    events = parse_all(raws)
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    state = new_case(HOSPITAL, CASE)
    raised: list[dict[str, Any]] = []
    fired_in_episode = False
    for event in data.draw(st.permutations(events + repeats)):
        outcome = apply_event(state, event, PRICE_BOOK, NOW)
        fired = forecasts(outcome.alerts)
        if outcome.duplicate:
            assert all(alert in raised for alert in fired)
            continue
        projected = _projected_level(state)
        if projected in (None, "none"):  # below blue (or no projection): the episode ends
            fired_in_episode = False
            assert fired == []
            continue
        if projected != "red":  # between blue and red: an episode, if any, goes on
            assert fired == []
            continue
        due = (
            not fired_in_episode
            and state.level == "none"
            and state.discharged_at is None
            and _full_days(state) >= FORECAST_ALERT_MIN_FULL_DAYS
        )
        assert len(fired) == (1 if due else 0)
        fired_in_episode = fired_in_episode or due
        raised.extend(fired)
        for alert in fired:
            assert alert["projected_total"] == str(state.projected_total)
            assert alert["total_cost"] == str(state.total_cost)
    assert len({alert["alert_id"] for alert in raised}) == len(raised)


@PROPERTY_SETTINGS
@given(st.one_of(case_events(), stays()), st.data())
def test_in_ledger_order_any_delivery_raises_the_same_forecast_alerts(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Delivered in any order, with duplicates and round trips through the changelog's
    form, a case's events applied in ledger order raise the same alerts, ids and all."""
    numbered = list(enumerate(parse_all(raws), start=1))
    _, in_order = deliver(new_case(HOSPITAL, CASE), numbered)
    repeats = data.draw(st.lists(st.sampled_from(numbered), max_size=6)) if numbered else []
    shuffled = data.draw(st.permutations(numbered + repeats))
    state, outcomes = deliver(new_case(HOSPITAL, CASE), shuffled, round_trip=True)
    assert raised(outcomes) == raised(in_order)
    episodes = [a for a in raised(in_order) if a["kind"] == "forecast"]
    assert len({a["alert_id"] for a in episodes}) == len(episodes) == state.forecast_seq


def test_the_stays_raise_forecast_alerts() -> None:
    """The generator above exercises the forecast (a property over stays that never
    raise one would prove little)."""
    found: list[int] = []

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(stays())
    def count(raws: list[dict[str, Any]]) -> None:
        _, alerts = run(parse_all(raws), PRICE_BOOK)
        found.append(len(forecasts(alerts)))

    count()
    assert sum(1 for n in found if n) >= len(found) // 10


@PROPERTY_SETTINGS
@given(st.one_of(case_events(), stays()), st.data())
def test_the_projection_and_daily_costs_do_not_depend_on_order(
    raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = parse_all(raws)
    reference, _ = run(events, PRICE_BOOK)
    state, _ = run(data.draw(st.permutations(events)), PRICE_BOOK)
    for name in ("projected_total", "projected_ratio", "cost_by_day", "cost_by_orderer"):
        assert getattr(state, name) == getattr(reference, name)
    assert sum(state.cost_by_day.values(), Decimal(0)) == state.total_cost
    assert sum(state.cost_by_orderer.values(), Decimal(0)) == state.total_cost
