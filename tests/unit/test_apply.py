"""apply_event: cost arithmetic, levels, thresholds, alerts, pricing and state round trips."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.casecost.apply import Outcome, Reprice, apply_event, new_case, receive
from services.casecost.events import Event, parse_event
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook, Thresholds
from services.casecost.state import (
    STATE_FIELDS,
    STATE_FORM,
    CaseState,
    state_data,
    waits_on_gap,
)
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
    drg_assigned,
    raw,
    transferred,
)


def run(
    events: list[Event], price_book: PriceBook | None = None, state: CaseState | None = None
) -> tuple[CaseState, list[dict[str, Any]]]:
    """Apply events in order; return the final state and every level alert raised (the
    forecast alerts are tested in test_projection.py)."""
    price_book = price_book or book()
    state = state or new_case(HOSPITAL, CASE)
    alerts: list[dict[str, Any]] = []
    for event in events:
        outcome = apply_event(state, event, price_book, NOW)
        state = outcome.state
        alerts.extend(alert for alert in outcome.alerts if alert["kind"] == "level")
    return state, alerts


def one(state: CaseState, event: Event, price_book: PriceBook | None = None) -> Outcome:
    return apply_event(state, event, price_book or book(), NOW)


# --- cost and ratio -----------------------------------------------------------------------


def test_ratio_is_total_over_standard() -> None:
    state, alerts = run([admitted(), charge("c1", "1234.56"), charge("c2", "100.00")])
    assert state.total_cost == Decimal("1334.56")
    assert state.standard_cost == Decimal("10000.00")
    assert state.ratio == Decimal("0.1335")  # 0.133456 to four places
    assert state.level == "none" and alerts == []
    assert state.drg_name == "group D1" and state.avg_los_days == Decimal("7.5")


def test_credit_lowers_total_and_category() -> None:
    state, _ = run(
        [
            admitted(),
            charge("c1", "300.00", category="drug"),
            charge("c2", "50.25", category="lab"),
            credit("r1", "100.10", category="drug"),
        ]
    )
    assert state.total_cost == Decimal("250.15")
    assert state.cost_by_category == {"drug": Decimal("199.90"), "lab": Decimal("50.25")}
    assert state.items["ITEM"].amount == Decimal("250.15")
    assert state.items["ITEM"].quantity == Decimal("1")  # 1 + 1 - 1


def test_events_applied_counts_each_event_once() -> None:
    state, _ = run(
        [admitted(), charge("c1", "1.00"), charge("c1", "1.00"), transferred("t", "ICU")]
    )
    assert state.events_applied == 3


# --- levels at the exact boundaries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "level"),
    [
        ("8999.99", "none"),  # ratio rounds to 0.9000, yet below blue
        ("9000.00", "blue"),
        ("9499.99", "blue"),
        ("9500.00", "yellow"),
        ("10000.00", "yellow"),
        ("10000.01", "red"),  # ratio rounds to 1.0000, yet above the standard
        ("25000.00", "red"),
        ("0.00", "none"),
    ],
)
def test_default_levels_at_exact_boundaries(total: str, level: str) -> None:
    state, alerts = run([admitted(), charge("c1", total)])
    assert state.level == level
    assert [alert["level"] for alert in alerts] == ([] if level == "none" else [level])


def test_levels_compare_exact_totals_not_the_rounded_ratio() -> None:
    state, _ = run([admitted(), charge("c1", "8999.99")])
    assert state.ratio == Decimal("0.9000") and state.level == "none"
    state, _ = run([admitted(), charge("c1", "10000.01")])
    assert state.ratio == Decimal("1.0000") and state.level == "red"


# --- thresholds per hospital and DRG --------------------------------------------------------

T_HD = Thresholds(Decimal("0.10"), Decimal("0.20"), Decimal("0.30"))
T_STAR_D = Thresholds(Decimal("0.40"), Decimal("0.50"), Decimal("0.60"))
T_H_STAR = Thresholds(Decimal("0.70"), Decimal("0.75"), Decimal("0.80"))
T_ALL = Thresholds(Decimal("0.85"), Decimal("0.86"), Decimal("0.87"))


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({("H1", "D1"), ("*", "D1"), ("H1", "*"), ("*", "*")}, T_HD),
        ({("*", "D1"), ("H1", "*"), ("*", "*")}, T_STAR_D),
        ({("H1", "*"), ("*", "*")}, T_H_STAR),
        ({("*", "*")}, T_ALL),
        ({("H2", "D1"), ("H1", "D2"), ("H2", "*"), ("*", "D2")}, Thresholds()),
    ],
)
def test_threshold_precedence(keys: set[tuple[str, str]], expected: Thresholds) -> None:
    by_key = {
        ("H1", "D1"): T_HD,
        ("*", "D1"): T_STAR_D,
        ("H1", "*"): T_H_STAR,
        ("*", "*"): T_ALL,
        ("H2", "D1"): T_HD,
        ("H1", "D2"): T_HD,
        ("H2", "*"): T_HD,
        ("*", "D2"): T_HD,
    }
    price_book = book(thresholds={key: by_key[key] for key in keys})
    assert price_book.thresholds_for("H1", "D1") == expected


@pytest.mark.parametrize(
    ("hospital", "drg", "total", "level"),
    [
        ("H1", "D1", "1000.00", "blue"),  # H1+D1: blue at 10% of 10000
        ("H1", "D1", "3000.01", "red"),
        ("H2", "D1", "3999.99", "none"),  # *+D1: blue at 40%
        ("H2", "D1", "5000.00", "yellow"),
        ("H1", "D2", "14000.00", "blue"),  # H1+*: blue at 70% of 20000
        ("H1", "D2", "16000.01", "red"),
        ("H2", "D2", "18000.00", "blue"),  # default
    ],
)
def test_apply_uses_the_thresholds_of_hospital_and_drg(
    hospital: str, drg: str, total: str, level: str
) -> None:
    price_book = book(thresholds={("H1", "D1"): T_HD, ("*", "D1"): T_STAR_D, ("H1", "*"): T_H_STAR})
    state, alerts = run(
        [admitted(drg_code=drg, hospital_id=hospital), charge("c1", total, hospital_id=hospital)],
        price_book,
        new_case(hospital, CASE),
    )
    assert state.level == level
    assert [alert["level"] for alert in alerts] == ([] if level == "none" else [level])


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Thresholds(Decimal("0.95"), Decimal("0.90"), Decimal("1.00"))
    with pytest.raises(ValueError):
        Thresholds(Decimal("0"), Decimal("0.90"), Decimal("1.00"))


# --- alerts -------------------------------------------------------------------------------


def test_one_alert_per_level_change_with_transition() -> None:
    state = new_case(HOSPITAL, CASE)
    steps = [
        (admitted(), None),
        (charge("c1", "9000.00", item_code="A"), ("blue", "none", "escalated")),
        (charge("c2", "100.00", item_code="B"), None),  # still blue: no alert
        (charge("c3", "1000.01", item_code="C"), ("red", "blue", "escalated")),
        (charge("c4", "5.00", item_code="D"), None),  # still red
        (credit("r1", "605.01", item_code="C"), ("yellow", "red", "de-escalated")),
        (credit("r2", "400.00", item_code="C"), ("blue", "yellow", "de-escalated")),
        (credit("r3", "9000.00", item_code="A"), ("none", "blue", "resolved")),
        (charge("c5", "9600.00", item_code="A"), ("yellow", "none", "escalated")),
    ]
    seen_ids = set()
    for event, expected in steps:
        outcome = one(state, event)
        state = outcome.state
        assert not outcome.duplicate
        if expected is None:
            assert outcome.alerts == [], event.event_id
            continue
        (alert,) = outcome.alerts
        assert (alert["level"], alert["previous_level"], alert["transition"]) == expected
        assert alert["event_id"] == event.event_id
        assert alert["total_cost"] == str(state.total_cost)
        assert alert["standard_cost"] == "10000.00"
        assert alert["ratio"] == str(state.ratio)
        assert alert["hospital_id"] == HOSPITAL and alert["case_id"] == CASE
        assert alert["department"] == "CARD" and alert["drg_code"] == "D1"
        assert alert["occurred_at"] == event.occurred_at.isoformat()
        assert alert["raised_at"] == NOW.isoformat()
        assert alert["alert_id"] not in seen_ids
        seen_ids.add(alert["alert_id"])
        assert state.alert_level == expected[0]
    assert len(state.alerts) == 6
    assert [a["sequence"] for a in state.alerts] == [1, 2, 3, 4, 5, 6]


def test_an_alert_can_jump_levels() -> None:
    _, alerts = run([admitted(), charge("c1", "12000.00")])
    assert [(a["previous_level"], a["level"], a["transition"]) for a in alerts] == [
        ("none", "red", "escalated")
    ]
    _, alerts = run([admitted(), charge("c1", "12000.00"), credit("r1", "11000.00")])
    assert alerts[-1]["transition"] == "resolved" and alerts[-1]["previous_level"] == "red"


def test_alert_carries_top_contributors() -> None:
    _, alerts = run(
        [admitted(), charge("c1", "4000.00", item_code="A"), charge("c2", "5000.00", item_code="B")]
    )
    (alert,) = alerts
    assert [c["item_code"] for c in alert["top_contributors"]] == ["B", "A"]
    assert alert["top_contributors"][0] == {
        "item_code": "B",
        "item_name": "name of B",
        "category": "drug",
        "quantity": "1",
        "amount": "5000.00",
    }


def test_alert_ids_are_stable_for_the_case_and_sequence() -> None:
    _, first = run([admitted(), charge("c1", "9500.00")])
    _, again = run([admitted(), charge("c1", "9500.00")])
    assert first[0]["alert_id"] == again[0]["alert_id"]
    _, other = run(
        [admitted(case_id="C2"), charge("c1", "9500.00", case_id="C2")],
        state=new_case(HOSPITAL, "C2"),
    )
    assert other[0]["alert_id"] != first[0]["alert_id"]


# --- regrouping and pricing ---------------------------------------------------------------


def test_drg_assigned_reprices_against_the_new_standard() -> None:
    state, alerts = run([admitted(drg_code="D2"), charge("c1", "9600.00")])
    assert state.standard_cost == Decimal("20000.00") and state.level == "none" and not alerts
    outcome = one(state, drg_assigned("g1", "D1", occurred_at=at(3)))
    assert outcome.state.standard_cost == Decimal("10000.00")
    assert outcome.state.drg_code == "D1" and outcome.state.level == "yellow"
    assert [(a["level"], a["transition"], a["event_id"]) for a in outcome.alerts] == [
        ("yellow", "escalated", "g1")
    ]
    outcome = one(outcome.state, drg_assigned("g2", "D2", occurred_at=at(4)))
    assert outcome.state.level == "none"
    assert [(a["level"], a["transition"]) for a in outcome.alerts] == [("none", "resolved")]


def test_an_older_drg_assignment_does_not_override_a_newer_one() -> None:
    state, _ = run(
        [
            admitted(drg_code="D2"),
            drg_assigned("g2", "D1", occurred_at=at(5)),
            drg_assigned("g1", "D2", occurred_at=at(4)),
        ]
    )
    assert state.drg_code == "D1"


def test_charge_before_admitted_is_kept_and_priced_once_admitted() -> None:
    state, alerts = run([charge("c1", "9600.00", department="LAB")])
    assert state.total_cost == Decimal("9600.00")
    assert state.level == "unpriced" and state.standard_cost is None and state.ratio is None
    assert alerts == [] and state.department == "LAB"
    state, alerts = run([admitted()], state=state)
    assert state.total_cost == Decimal("9600.00") and state.level == "yellow"
    assert state.department == "CARD"  # the admission says where the patient is
    assert [a["level"] for a in alerts] == ["yellow"]


def test_charge_before_drg_is_priced_when_drg_arrives() -> None:
    state, alerts = run([admitted(drg_code=None), charge("c1", "9100.00")])
    assert state.level == "unpriced" and alerts == []
    state, alerts = run([drg_assigned("g1", "D1")], state=state)
    assert state.level == "blue" and [a["level"] for a in alerts] == ["blue"]


@pytest.mark.parametrize(
    "first",
    [{"drg_code": "NOPE"}, {"scheme": "unknown-scheme"}],
)
def test_unknown_drg_or_scheme_is_unpriced_without_alert(first: dict[str, str]) -> None:
    state, alerts = run([admitted(**first), charge("c1", "50000.00")])
    assert state.level == "unpriced" and alerts == []
    assert state.standard_cost is None and state.ratio is None
    assert state.alert_level == "none"


def test_regroup_to_unknown_drg_goes_unpriced_without_alert() -> None:
    state, alerts = run([admitted(), charge("c1", "9600.00"), drg_assigned("g1", "NOPE")])
    assert state.level == "unpriced" and [a["level"] for a in alerts] == ["yellow"]
    assert state.alert_level == "yellow"


def test_no_catalogue_in_force_is_unpriced() -> None:
    price_book = book(catalogue(effective_from=date(2027, 1, 1)))
    state, alerts = run([admitted(), charge("c1", "50000.00")], price_book)
    assert state.level == "unpriced" and alerts == []


def test_standard_is_weight_times_base_rate_rounded_half_up_to_the_cent() -> None:
    price_book = book(
        catalogue(
            base_rates={"employee": "100.10", "resident": "12252.70"},
            groups={"D1": ("0.05", None), "FM15": ("3.2973", None)},
        )
    )
    state, _ = run([admitted()], price_book)
    assert state.standard_cost == Decimal("5.01")  # 5.005: half-up, not half-even
    state, _ = run([admitted(drg_code="FM15", scheme="resident")], price_book)
    assert state.standard_cost == Decimal("40400.83")  # 40400.82771


def test_resident_scheme_uses_its_own_base_rate() -> None:
    state, _ = run([admitted(scheme="resident")])
    assert state.standard_cost == Decimal("8000.00")


def test_explicit_standard_cost_overrides_weight_and_scheme() -> None:
    for scheme in ("employee", "resident", "not-in-catalogue"):
        state, _ = run([admitted(drg_code="OVR", scheme=scheme), charge("c1", "4750.00")])
        assert state.standard_cost == Decimal("5000.00") and state.level == "yellow"


def _dated_book() -> PriceBook:
    return book(
        catalogue(1, date(2026, 1, 1), groups={"D1": ("1", None)}),
        catalogue(2, date(2026, 7, 1), groups={"D1": ("2", None)}),
        catalogue(3, date(2026, 1, 1), hospital_id="H1", groups={"D1": ("1.5", None)}),
        catalogue(4, date(2026, 1, 1), hospital_id="H9", groups={"D1": ("3", None)}),
        catalogue(5, date(2027, 1, 1), groups={"D1": ("4", None)}),
    )


@pytest.mark.parametrize(
    ("hospital", "admitted_at", "standard"),
    [
        ("H1", at(1, 8, month=3), "15000.00"),  # hospital-specific preferred on the same date
        ("H2", at(1, 8, month=3), "10000.00"),  # other hospitals' catalogues ignored
        ("H2", at(1, 8, month=7), "20000.00"),  # newest in force
        ("H2", at(30, 23, month=6), "10000.00"),  # the admission day in its own offset
        ("H9", at(1, 8, month=3), "30000.00"),
    ],
)
def test_catalogue_is_chosen_by_admission_date(
    hospital: str, admitted_at: str, standard: str
) -> None:
    state, _ = run(
        [
            admitted(hospital_id=hospital, admitted_at=admitted_at),
            charge("c1", "1.00", hospital_id=hospital, occurred_at=at(2, month=8)),
        ],
        _dated_book(),
        new_case(hospital, CASE),
    )
    assert state.standard_cost == Decimal(standard)


def test_catalogue_follows_admission_date_not_event_dates() -> None:
    # a late admission (occurred in August) admits on June 30: the January catalogue applies
    state, _ = run(
        [
            charge("c1", "1.00", hospital_id="H2", occurred_at=at(2, month=8)),
            admitted(hospital_id="H2", admitted_at=at(30, 9, month=6), occurred_at=at(3, month=8)),
        ],
        _dated_book(),
        new_case("H2", CASE),
    )
    assert state.standard_cost == Decimal("10000.00")


def test_reprice_prices_again_with_a_newer_book_without_counting_an_event() -> None:
    without_d1 = book(catalogue(groups={"OTHER": ("1", None)}))
    state, alerts = run([admitted(), charge("c1", "9600.00")], without_d1)
    assert state.level == "unpriced" and alerts == []
    reprice = Reprice("reprice-2", HOSPITAL, CASE, NOW)
    outcome = one(state, reprice, book())
    assert outcome.state.level == "yellow" and outcome.state.events_applied == 2
    assert [(a["level"], a["event_id"]) for a in outcome.alerts] == [("yellow", "reprice-2")]
    assert one(outcome.state, reprice, book()).duplicate


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_changes_nothing_and_returns_the_earlier_alerts() -> None:
    state, _ = run([admitted()])
    first = one(state, charge("c1", "9500.00"))
    before = orjson.dumps(first.state.to_dict())
    again = one(first.state, charge("c1", "9500.00"))
    assert again.duplicate is True
    assert again.alerts == first.alerts and len(again.alerts) == 1
    assert orjson.dumps(again.state.to_dict()) == before
    assert again.state.total_cost == Decimal("9500.00") and again.state.alert_seq == 1


def test_duplicate_of_an_event_without_alert_returns_none() -> None:
    state, _ = run([admitted(), charge("c1", "10.00")])
    outcome = one(state, charge("c1", "10.00"))
    assert outcome.duplicate is True and outcome.alerts == []
    assert outcome.state.total_cost == Decimal("10.00")


def test_duplicate_event_id_with_other_content_is_still_a_duplicate() -> None:
    state, _ = run([admitted(), charge("c1", "10.00"), charge("c1", "99.00")])
    assert state.total_cost == Decimal("10.00")


def test_duplicate_after_later_alerts_returns_only_its_own() -> None:
    state, alerts = run([admitted(), charge("c1", "9000.00"), charge("c2", "1000.01")])
    assert [a["event_id"] for a in alerts] == ["c1", "c2"]
    outcome = one(state, charge("c1", "9000.00"))
    assert [a["level"] for a in outcome.alerts] == ["blue"]


# --- discharge -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "flag"),
    [
        ("20000.01", "high"),
        ("20000.00", None),
        ("3999.99", "low"),
        ("4000.00", None),
        ("0.00", "low"),
    ],
)
def test_discharge_sets_the_ratio_flag(total: str, flag: str | None) -> None:
    state, _ = run([admitted(), charge("c1", total)])
    assert state.ratio_flag is None and state.status == "open"
    state, _ = run([discharged()], state=state)
    assert state.status == "discharged" and state.ratio_flag == flag
    assert state.discharged_at is not None


@pytest.mark.parametrize(
    ("total", "flag"),
    [
        # this catalogue's D1: high above 3 x 10000.00, low below 0.3 x
        ("30000.01", "high"),
        ("30000.00", None),
        ("20000.01", None),
        ("2999.99", "low"),
        ("3000.00", None),
    ],
)
def test_a_catalogue_may_set_a_groups_ratio_limits(total: str, flag: str | None) -> None:
    usual = catalogue()
    d1 = dataclasses.replace(usual.groups["D1"], high_ratio=Decimal("3"), low_ratio=Decimal("0.3"))
    own = book(dataclasses.replace(usual, groups={**usual.groups, "D1": d1}))
    state, _ = run([admitted(), charge("c1", total), discharged()], own)
    assert state.status == "discharged" and state.ratio_flag == flag


def test_discharge_before_admission_arrives_is_still_discharged() -> None:
    state, _ = run([discharged(), admitted(), charge("c1", "30000.00")])
    assert state.status == "discharged" and state.ratio_flag == "high"


# --- departments -------------------------------------------------------------------------


def test_transfer_moves_the_case_and_charges_do_not() -> None:
    state, _ = run(
        [
            admitted(department="CARD"),
            transferred("t1", "ICU", occurred_at=at(4)),
            charge("c1", "1.00", department="LAB", occurred_at=at(5)),
        ]
    )
    assert state.department == "ICU"
    state, _ = run([transferred("t1", "ICU", occurred_at=at(4)), admitted(department="CARD")])
    assert state.department == "ICU"  # the admission is older than the transfer


# --- top contributors ---------------------------------------------------------------------


def test_top_contributors_ordered_by_amount_largest_first() -> None:
    state, _ = run(
        [
            admitted(),
            charge("a", "10.00", item_code="SMALL"),
            charge("b", "900.00", item_code="BIG"),
            charge("c", "50.00", item_code="MID"),
            charge("d", "60.00", item_code="MID"),
            charge("e", "110.00", item_code="TIE"),
            charge("f", "5.00", item_code="GONE"),
            credit("g", "5.00", item_code="GONE"),
            charge("h", "1.00", item_code="X1"),
            charge("i", "2.00", item_code="X2"),
        ]
    )
    top = state.top_contributors()
    assert [(c["item_code"], c["amount"]) for c in top] == [
        ("BIG", "900.00"),
        ("MID", "110.00"),
        ("TIE", "110.00"),
        ("SMALL", "10.00"),
        ("X2", "2.00"),
    ]
    assert all(c["item_code"] != "GONE" for c in state.top_contributors(limit=20))


# --- state round trip ---------------------------------------------------------------------


def _rich_state() -> CaseState:
    state, alerts = run(
        [
            charge(
                "c0",
                "100.00",
                department="LAB",
                category="lab",
                item_code="L1",
                occurred_at=at(1, 7),
            ),
            admitted(),
            charge("c1", "9000.00", item_code="A"),
            transferred("t1", "ICU", occurred_at=at(4)),
            charge("c2", "1000.01", category="consumable", item_code="B"),
            credit("r1", "500.00", category="consumable", item_code="B"),
            drg_assigned("g1", "D1", occurred_at=at(5)),
            discharged(),
        ]
    )
    assert len(alerts) >= 2 and state.discharged_at is not None
    return state


def test_state_round_trips_through_json() -> None:
    state = _rich_state()
    data = orjson.loads(orjson.dumps(state.to_dict()))
    restored = CaseState.from_dict(data)
    for spec in dataclasses.fields(CaseState):
        if spec.name == "memo":  # derived answers, not state: rebuilt on use
            continue
        assert getattr(restored, spec.name) == getattr(state, spec.name), spec.name
    assert orjson.loads(orjson.dumps(restored.to_dict())) == data
    assert restored.status == state.status
    assert restored.top_contributors() == state.top_contributors()


def test_round_tripped_state_behaves_the_same() -> None:
    state = _rich_state()
    restored = CaseState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    follow = [charge("c9", "7000.00", item_code="Z"), charge("c1", "9000.00", item_code="A")]
    direct, direct_alerts = run(follow, state=state)
    replayed, replayed_alerts = run(follow, state=restored)
    assert orjson.dumps(direct.to_dict()) == orjson.dumps(replayed.to_dict())
    assert direct_alerts == replayed_alerts


def test_new_case_round_trips() -> None:
    state = new_case(HOSPITAL, CASE)
    assert CaseState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state


def test_the_changelog_form_is_the_plain_data_without_its_names() -> None:
    state = _rich_state()
    wire = orjson.dumps(state.to_wire())
    named = orjson.dumps(state.to_dict())
    assert orjson.loads(wire)[0] == STATE_FORM
    assert state_data(wire) == orjson.loads(named)
    assert list(state_data(wire)) == list(STATE_FIELDS)
    assert len(wire) < len(named) - sum(len(name) for name in STATE_FIELDS)
    restored = CaseState.from_dict(state_data(wire))
    assert orjson.dumps(restored.to_wire()) == wire


def test_a_state_written_by_name_still_decodes() -> None:
    # what a worker wrote before the array form: an upgraded worker reads it back
    state = _rich_state()
    named = orjson.dumps(state.to_dict())
    assert state_data(named) == orjson.loads(named)
    assert orjson.dumps(CaseState.from_dict(state_data(named)).to_wire()) == orjson.dumps(
        state.to_wire()
    )


def test_a_shorter_array_decodes_without_the_fields_it_lacks() -> None:
    wire = orjson.loads(orjson.dumps(new_case(HOSPITAL, CASE).to_wire()))
    data = state_data(orjson.dumps(wire[:-1]))
    assert "rule_memory" not in data and data["case_id"] == CASE
    assert CaseState.from_dict(data) == new_case(HOSPITAL, CASE)


@pytest.mark.parametrize("raw", [b"[1,null]", b"[]", b'"case"', b"3"])
def test_what_is_no_case_state_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a case state"):
        state_data(raw)


def test_whether_a_state_waits_on_a_gap_shows_in_its_bytes() -> None:
    idle = new_case(HOSPITAL, CASE)
    waiting = receive(new_case(HOSPITAL, CASE), charge("c2", "10.00"), 2, book(), NOW).state
    assert waiting.held and waiting.held_since is not None
    for state, waits in ((idle, False), (waiting, True)):
        assert waits_on_gap(orjson.dumps(state.to_wire())) is waits
        assert waits_on_gap(orjson.dumps(state.to_dict())) is waits


def test_an_item_changelog_form_follows_every_change_of_the_item() -> None:
    state, _ = run([admitted(), charge("c1", "100.00", item_code="A")])
    assert state.to_dict()["items"]["A"][2:] == ["1", "100.00"]
    state, _ = run([charge("c2", "50.00", item_code="A")], state=state)
    assert state.to_dict()["items"]["A"][2:] == ["2", "150.00"]
    state, _ = run([credit("r1", "100.00", item_code="A")], state=state)
    assert state.to_dict()["items"]["A"][2:] == ["1", "50.00"]


def test_dropping_the_memo_changes_no_result() -> None:
    remembered = _rich_state()
    forgotten = CaseState.from_dict(remembered.to_dict())
    forgotten.memo = type(forgotten.memo)()
    more = [
        charge("c9", "700.00", item_code="A", occurred_at=at(6)),
        Reprice("p", HOSPITAL, CASE, NOW),
    ]
    for state in (remembered, forgotten):
        run(more, state=state)
    assert forgotten.to_dict() == remembered.to_dict()


# --- corrections: the newest word wins whatever the arrival order ---------------------------


@pytest.mark.parametrize("corrected_last", [True, False])
def test_a_corrected_admission_wins_over_the_first_whatever_the_order(corrected_last: bool) -> None:
    first = admitted(
        event_id="adm-1", drg_code="D1", scheme="employee", department="CARD",
        admitted_at=at(1, 8), occurred_at=at(1, 8),
    )  # fmt: skip
    corrected = admitted(
        event_id="adm-2", drg_code="D2", scheme="resident", department="SURG",
        admitted_at=at(2, 9), occurred_at=at(2, 10),
    )  # fmt: skip
    state, _ = run([first, corrected] if corrected_last else [corrected, first])
    assert (state.drg_code, state.insurance_scheme, state.department) == ("D2", "resident", "SURG")
    assert state.admitted_at == corrected.admitted_at  # type: ignore[union-attr]
    assert state.standard_cost == Decimal("16000.00")  # D2 for residents: 2 x 8000.00


@pytest.mark.parametrize("corrected_last", [True, False])
def test_a_corrected_discharge_wins_over_the_first_whatever_the_order(corrected_last: bool) -> None:
    first, corrected = discharged("dis-1", at(9)), discharged("dis-2", at(11))
    state, _ = run(
        [admitted(), first, corrected] if corrected_last else [admitted(), corrected, first]
    )
    assert state.discharged_at == corrected.discharged_at  # type: ignore[union-attr]


def test_an_admission_newer_than_a_regroup_sets_the_drg() -> None:
    state, alerts = run(
        [
            admitted(event_id="adm-1", drg_code="D2", occurred_at=at(1, 8)),
            charge("c1", "9600.00"),
            drg_assigned("g1", "D2", occurred_at=at(3)),
            admitted(event_id="adm-2", drg_code="D1", occurred_at=at(4)),
        ]
    )
    assert state.drg_code == "D1" and state.standard_cost == Decimal("10000.00")
    assert [(a["level"], a["event_id"]) for a in alerts] == [("yellow", "adm-2")]


def test_an_admission_older_than_a_regroup_leaves_the_drg() -> None:
    state, _ = run(
        [drg_assigned("g1", "D2", occurred_at=at(3)), admitted(drg_code="D1", occurred_at=at(2))]
    )
    assert state.drg_code == "D2" and state.standard_cost == Decimal("20000.00")


def test_an_admission_without_a_drg_leaves_the_assigned_one() -> None:
    state, _ = run(
        [drg_assigned("g1", "D2", occurred_at=at(1, 6)), admitted(drg_code=None, occurred_at=at(2))]
    )
    assert state.drg_code == "D2" and state.standard_cost == Decimal("20000.00")


# --- pricing: the day, the hospital's own catalogue, a standard of zero ---------------------


def test_a_corrected_admission_day_reprices_with_the_same_drg_and_scheme() -> None:
    state, _ = run(
        [
            admitted(event_id="adm-1", hospital_id="H2", admitted_at=at(1, 8, month=8)),
            charge("c1", "9600.00", hospital_id="H2", occurred_at=at(2, month=8)),
        ],
        _dated_book(),
        new_case("H2", CASE),
    )
    assert state.standard_cost == Decimal("20000.00") and state.level == "none"
    # the admission was in fact on June 30: the January catalogue's standard applies
    outcome = one(
        state,
        admitted(
            event_id="adm-2",
            hospital_id="H2",
            admitted_at=at(30, 9, month=6),
            occurred_at=at(3, month=8),
        ),
        _dated_book(),
    )
    assert outcome.state.standard_cost == Decimal("10000.00") and outcome.state.level == "yellow"
    assert [alert["level"] for alert in outcome.alerts] == ["yellow"]


def test_an_earlier_first_event_reprices_a_case_not_yet_admitted() -> None:
    price_book = book(
        catalogue(1, date(2026, 1, 1), groups={"OVR": ("1", "5000.00")}),
        catalogue(2, date(2026, 7, 1), groups={"OVR": ("1", "6000.00")}),
    )
    state, _ = run([drg_assigned("g1", "OVR", occurred_at=at(2, month=8))], price_book)
    assert state.standard_cost == Decimal("6000.00")
    state, _ = run([charge("c1", "1.00", occurred_at=at(1, month=6))], price_book, state)
    assert state.standard_cost == Decimal("5000.00")


def test_a_hospitals_own_catalogue_names_the_drg_and_its_average_stay() -> None:
    national = Catalogue(
        catalogue_id=1,
        name="national",
        effective_from=date(2026, 1, 1),
        base_rates={"employee": Decimal("10000.00")},
        groups={"D1": DrgGroup("D1", "national D1", Decimal("1"), Decimal("7.5"))},
    )
    own = Catalogue(
        catalogue_id=2,
        name="H1's own",
        effective_from=date(2026, 1, 1),
        base_rates={"employee": Decimal("12000.00")},
        groups={"D1": DrgGroup("D1", "H1's D1", Decimal("1.5"), Decimal("6"))},
        hospital_id="H1",
    )
    price_book = book(national, own)
    for hospital, name, stay, standard in [
        ("H1", "H1's D1", "6", "18000.00"),
        ("H2", "national D1", "7.5", "10000.00"),
    ]:
        state, _ = run([admitted(hospital_id=hospital)], price_book, new_case(hospital, CASE))
        assert state.drg_name == name and state.avg_los_days == Decimal(stay)
        assert state.standard_cost == Decimal(standard)


@pytest.mark.parametrize(
    ("weight", "override"),
    [("0", None), ("1", "0.00"), ("0.0000004", None)],  # 0.0000004 x 10000.00: 0.00 to the cent
)
def test_a_standard_of_zero_leaves_the_case_unpriced(weight: str, override: str | None) -> None:
    price_book = book(catalogue(groups={"ZERO": (weight, override)}))
    state, alerts = run([admitted(drg_code="ZERO"), charge("c1", "100.00")], price_book)
    assert state.level == "unpriced" and state.standard_cost is None and state.ratio is None
    assert alerts == [] and state.total_cost == Decimal("100.00")


def test_equal_thresholds_go_from_none_to_yellow_to_red() -> None:
    line = Decimal("0.90")
    price_book = book(thresholds={("*", "*"): Thresholds(line, line, line)})
    state, alerts = run([admitted(), charge("c1", "8999.99")], price_book)
    assert state.level == "none" and alerts == []
    state, alerts = run([charge("c2", "0.01")], price_book, state)
    assert [alert["level"] for alert in alerts] == ["yellow"]
    state, alerts = run([charge("c3", "0.01")], price_book, state)
    assert [alert["level"] for alert in alerts] == ["red"]


# --- cost lines of more than one unit ---------------------------------------------------------


def line(kind: str, event_id: str, quantity: str, unit_price: str, amount: str) -> Event:
    return parse_event(
        raw(
            kind,
            event_id,
            at(2),
            department="CARD",
            item_code="STENT",
            item_name="stent",
            category="consumable",
            quantity=quantity,
            unit_price=unit_price,
            amount=amount,
        )
    )


def test_a_credit_takes_back_its_quantity_and_amount() -> None:
    state, _ = run(
        [
            admitted(),
            line("charge", "c1", "5", "1200.00", "6000.00"),
            line("credit", "r1", "2", "1200.00", "2400.00"),
            line("credit", "r2", "0.5", "1200.00", "600.00"),
        ]
    )
    stent = state.items["STENT"]
    assert stent.quantity == Decimal("2.5") and stent.amount == Decimal("3000.00")
    assert state.total_cost == Decimal("3000.00")
    assert state.cost_by_category == {"consumable": Decimal("3000.00")}
    assert state.top_contributors() == [
        {
            "item_code": "STENT",
            "item_name": "stent",
            "category": "consumable",
            "quantity": "2.5",
            "amount": "3000.00",
        }
    ]


# --- the stored form --------------------------------------------------------------------------


def test_a_state_stored_by_an_earlier_build_still_refuses_a_redelivery() -> None:
    # the fingerprints of the event ids a stored state has seen: were their form to
    # change, every stored case would count its redelivered events a second time
    stored = {
        "hospital_id": HOSPITAL,
        "case_id": CASE,
        "total_cost": "9500.00",
        "cost_by_category": {"drug": "9500.00"},
        "items": {"ITEM": ["name of ITEM", "drug", "1", "9500.00"]},
        "events_applied": 2,
        "seen": ["43f000a36f6d744e", "e408970c1c4d3fa7"],  # "c1" and "adm"
        "level": "yellow",
        "alert_level": "yellow",
        "alert_seq": 1,
        "alerts": [],
    }
    state = CaseState.from_dict(stored)
    assert one(state, charge("c1", "9500.00")).duplicate
    assert one(state, admitted()).duplicate
    assert state.total_cost == Decimal("9500.00") and state.events_applied == 2
    fresh, _ = run([admitted(), charge("c1", "9500.00")])
    assert sorted(fresh.seen) == stored["seen"]


def test_a_state_stored_before_ledger_numbering_starts_at_sequence_one() -> None:
    stored = {
        "hospital_id": HOSPITAL,
        "case_id": CASE,
        "total_cost": "0",
        "cost_by_category": {},
        "items": {},
        "events_applied": 0,
        "seen": [],
        "level": "unpriced",
        "alert_level": "none",
        "alert_seq": 0,
        "alerts": [],
    }
    state = CaseState.from_dict(stored)
    assert state.next_sequence == 1 and state.held == {} and state.held_since is None
    outcome = receive(state, charge("c1", "5.00"), 1, book(), NOW)
    assert outcome.state.total_cost == Decimal("5.00") and outcome.state.next_sequence == 2


def test_stored_stamps_keep_their_meaning_for_later_corrections() -> None:
    # stamps are (priority, UTC time, event id): a cost line's department (1) gives way to
    # an admission's or a transfer's (2), and among equals the newest wins
    state, _ = run(
        [
            admitted(event_id="adm-2", drg_code="D2", occurred_at=at(5)),
            transferred("t-2", "ICU", occurred_at=at(5)),
            drg_assigned("g-2", "D2", occurred_at=at(5)),
            discharged("dis-2", at(9)),
        ]
    )
    stored = orjson.loads(orjson.dumps(state.to_dict()))
    assert stored["drg_stamp"] == [2, "2026-03-05T02:00:00+00:00", "g-2"]
    assert stored["department_stamp"] == [2, "2026-03-05T02:00:00+00:00", "t-2"]
    assert stored["discharged_stamp"] == [2, "2026-03-09T02:00:00+00:00", "dis-2"]
    restored = CaseState.from_dict(stored)
    older = [
        admitted(event_id="adm-1", drg_code="D1", department="CARD", occurred_at=at(4)),
        transferred("t-1", "WARD", occurred_at=at(4)),
        drg_assigned("g-1", "D1", occurred_at=at(4)),
        discharged("dis-1", at(8)),
    ]
    restored, _ = run(older, state=restored)
    assert (restored.drg_code, restored.department) == ("D2", "ICU")
    assert restored.discharged_at == state.discharged_at


def test_the_newest_of_admissions_and_transfers_says_where_the_patient_is() -> None:
    state, _ = run(
        [
            transferred("t1", "ICU", occurred_at=at(4)),
            admitted(event_id="adm-2", department="SURG", occurred_at=at(5)),
            charge("c1", "1.00", department="LAB", occurred_at=at(6)),
        ]
    )
    assert state.department == "SURG"


def test_first_and_last_event_times_span_every_event() -> None:
    state, _ = run(
        [
            charge("c1", "1.00", occurred_at=at(3)),
            charge("c2", "1.00", occurred_at=at(1, 6)),
            charge("c3", "1.00", occurred_at=at(7)),
            charge("c4", "1.00", occurred_at=at(2)),
        ]
    )
    assert state.first_event_at is not None and state.last_event_at is not None
    assert state.first_event_at.isoformat() == at(1, 6)
    assert state.last_event_at.isoformat() == at(7)
    assert state.to_dict()["last_event_at"] == at(7)


def test_a_flagged_case_regrouped_to_an_unknown_drg_loses_its_flag() -> None:
    state, _ = run([admitted(), charge("c1", "30000.00"), discharged()])
    assert state.ratio_flag == "high"
    state, _ = run([drg_assigned("g1", "NOPE", occurred_at=at(10))], state=state)
    assert state.level == "unpriced" and state.ratio_flag is None
    assert state.to_dict()["ratio_flag"] is None


def test_a_reprice_of_a_case_with_no_events_leaves_it_unpriced() -> None:
    outcome = one(new_case(HOSPITAL, CASE), Reprice("reprice-1", HOSPITAL, CASE, NOW))
    assert outcome.state.level == "unpriced" and outcome.alerts == []
    assert outcome.state.standard_cost is None and outcome.state.drg_name is None


def test_an_item_of_less_than_one_yuan_is_a_contributor_and_a_fully_credited_one_not() -> None:
    state, _ = run(
        [
            charge("c1", "0.50", item_code="SWAB"),
            charge("c2", "3.00", item_code="GONE"),
            credit("r2", "3.00", item_code="GONE"),
        ]
    )
    assert [c["item_code"] for c in state.top_contributors()] == ["SWAB"]


@pytest.fixture
def machine_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Run the test as on a machine whose local time zone is the given one."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_alerts_are_raised_in_utc_whatever_the_machines_zone(
    machine_zone: Callable[[str], None],
) -> None:
    machine_zone("Asia/Shanghai")
    _, alerts = run([admitted(), charge("c1", "9500.00")])
    assert alerts[0]["raised_at"] == "2026-11-23T12:00:00+00:00"


def test_the_newest_transfer_wins_across_a_daylight_saving_change_of_the_machines_zone(
    machine_zone: Callable[[str], None],
) -> None:
    # 05:50 UTC is 01:50 summer time in New York; 06:10 UTC, twenty minutes later, is
    # 01:10 winter time: compared as local text, the later transfer would look older
    machine_zone("America/New_York")
    earlier = transferred("t1", "ICU", occurred_at="2026-11-01T05:50:00+00:00")
    later = transferred("t2", "WARD", occurred_at="2026-11-01T06:10:00+00:00")
    for order in ([earlier, later], [later, earlier]):
        state, _ = run(order)
        assert state.department == "WARD"


# --- the pricing day is the hospital's local day ----------------------------------------


def _new_year_book(zone: str = "Asia/Shanghai") -> PriceBook:
    from dataclasses import replace
    from zoneinfo import ZoneInfo

    old = catalogue(1, date(2025, 1, 1), groups={"D1": ("1", "1000.00")})
    new = catalogue(2, date(2026, 1, 1), groups={"D1": ("1", "2000.00")})
    return replace(book(old, new), zone=ZoneInfo(zone))


@pytest.mark.parametrize(
    "admitted_at",
    ["2026-01-01T01:30:00+08:00", "2025-12-31T17:30:00+00:00", "2025-12-31T12:30:00-05:00"],
)
def test_a_case_is_priced_by_its_admission_day_where_the_hospital_is(admitted_at: str) -> None:
    # the same moment written in three offsets: 01:30 on New Year's Day in Beijing
    event = admitted(admitted_at=admitted_at, occurred_at=admitted_at)
    state, _ = run([event], _new_year_book())
    assert state.standard_cost == Decimal("2000.00")


def test_the_pricing_day_follows_the_configured_zone() -> None:
    event = admitted(admitted_at="2026-01-01T01:30:00+08:00")
    state, _ = run([event], _new_year_book("UTC"))  # still 31 December in UTC
    assert state.standard_cost == Decimal("1000.00")
