"""Apply one event to a case: the pure heart of drgwatch.

`apply_event(state, event, price_book, now)` folds the event into the case's state and
returns it with the alerts the event raised. The state is changed in place and the
same object returned (a case's state belongs to whoever applies its events; copying
every item with every event would cost the hot path most of its time), so a caller
that must keep the state before an event keeps a copy (`CaseState.from_dict(
state.to_dict())`). It never touches a broker or a database, so every rule here is
tested directly, and the worker only decodes, calls it and stores the result.

After every event the case is priced (standard, ratio, level) and projected to discharge
(forecast.project_to_discharge, on the case's own clock); an event raises a level alert
when the level changed, and a forecast alert when the projection crossed red while the
cost is below blue (once per episode, see `_forecast_alert_for`).

`receive(...)` puts a case's events in ledger order first. Ingest numbers each case's
acknowledged events 1, 2, 3, ... in the order it made them durable; the stream can
deliver them in another order (a relay publishing what a crashed request could not,
a replay after broker loss), and an event that arrives ahead of a gap waits in the
state until the gap is filled. Totals never depend on order, but alerts do: in ledger
order they are the same whatever the transport did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.casecost.events import (
    Admitted,
    Charge,
    Credit,
    DischargeCancelled,
    Discharged,
    DrgAssigned,
    Event,
    Transferred,
    event_to_wire,
    parse_event,
)
from services.casecost.forecast import ONE_OFF_CATEGORIES, Projection, project_to_discharge
from services.casecost.pricing import LEVEL_RANK, AlertLevel, PriceBook, Thresholds, ratio_of
from services.casecost.rules import CaseMemory, evaluate_case
from services.casecost.state import (
    MAX_ALERTS_KEPT,
    CaseState,
    ItemCost,
    Pricing,
    Stamp,
    event_digest,
)

ALERT_NAMESPACE = uuid.UUID("6f1c9a52-3d0e-4c8e-9a57-4f0b3c2d1e10")
HIGH_RATIO = Decimal("2")
LOW_RATIO = Decimal("0.4")
ZERO = Decimal(0)
_COST_LINES = (Charge, Credit)
_DISCHARGES = (Discharged, DischargeCancelled)
# a forecast alert waits for this many full local days of the stay (see _forecast_alert_for)
FORECAST_ALERT_MIN_FULL_DAYS = 2


@dataclass(frozen=True, slots=True)
class Reprice:
    """Internal command: price the case again against newer reference data."""

    event_id: str
    hospital_id: str
    case_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Release:
    """Internal command: stop waiting for a sequence gap and apply what is held."""

    event_id: str
    hospital_id: str
    case_id: str
    occurred_at: datetime


@dataclass(slots=True)  # not frozen: one is made for every event, and never changed
class Outcome:
    state: CaseState
    alerts: list[dict[str, Any]]
    duplicate: bool = False  # nothing changed: the event was applied before
    released: tuple[int, ...] = ()  # sequence numbers given up on after a long gap

    @property
    def changed(self) -> bool:
        return not self.duplicate


def new_case(hospital_id: str, case_id: str) -> CaseState:
    return CaseState(hospital_id=hospital_id, case_id=case_id)


def apply_event(
    state: CaseState, event: Event | Reprice, price_book: PriceBook, now: datetime
) -> Outcome:
    """Fold one event into `state` (in place) and return it with any alert raised.

    Idempotent per event_id: an event seen before changes nothing and hands back the
    alerts it raised then (`duplicate=True`).
    """
    digest = event_digest(event.event_id)
    if digest in state.seen:
        # Redelivered or duplicated: change nothing, hand back what it raised before
        # so that an alert lost between state and sink can still be delivered.
        earlier = [alert for alert in state.alerts if alert["event_id"] == event.event_id]
        return Outcome(state, earlier, duplicate=True)
    state.seen.add(digest)
    if not isinstance(event, Reprice):
        _fold(state, event, price_book)
        state.events_applied += 1
    pricing = _price(state, price_book)
    projection = _project(state, pricing, price_book)
    alerts = []
    alert = _alert_for(state, event, now)
    if alert is not None:
        alerts.append(alert)
    forecast_alert = _forecast_alert_for(state, event, now, pricing.thresholds, projection)
    if forecast_alert is not None:
        alerts.append(forecast_alert)
    rules = price_book.case_rules
    if rules is not None and rules.rules:
        memory = state.rule_memory
        if not isinstance(memory, CaseMemory):
            memory = CaseMemory.from_dict(memory if isinstance(memory, dict) else None)
            state.rule_memory = memory
        findings = evaluate_case(rules, memory, state, event, now)[1]
        if findings:
            state.alerts = [*state.alerts, *findings][-MAX_ALERTS_KEPT:]
            alerts.extend(findings)
    return Outcome(state, alerts)


def receive(
    state: CaseState,
    event: Event | Reprice,
    sequence: int | None,
    price_book: PriceBook,
    now: datetime,
    *,
    gap_timeout: timedelta | None = None,
) -> Outcome:
    """Apply an event in its case's ledger order; one that arrives early waits for the gap.

    Changes `state` in place, as `apply_event` does; the outcome is `changed` whenever
    the state moved (an in-order duplicate still advances the sequence).

    `sequence` is the event's per-case number from the ingest ledger (None for events
    and commands that carry none: they apply at once). After `gap_timeout` of waiting,
    the held events are applied anyway (a ledger that lost an entry must not stall a
    case forever); an event that turns up after its slot has passed still counts once.
    """
    if sequence is None or sequence < state.next_sequence or isinstance(event, Reprice):
        return apply_event(state, event, price_book, now)
    if sequence == state.next_sequence and not state.held:  # in order: the usual case
        state.next_sequence += 1
        applied = apply_event(state, event, price_book, now)
        # the sequence moved on even for an event seen before: the state changed
        return Outcome(state, applied.alerts) if applied.duplicate else applied
    if sequence in state.held:
        return _drained(state, price_book, now, gap_timeout, duplicate_if_idle=True)
    state.held[sequence] = event_to_wire(event)
    if state.held_since is None:
        state.held_since = now
    return _drained(state, price_book, now, gap_timeout, duplicate_if_idle=False)


def release_held(state: CaseState, price_book: PriceBook, now: datetime) -> Outcome:
    """Give up on a gap: apply every held event in sequence order (in place)."""
    return _drained(state, price_book, now, timedelta(0), duplicate_if_idle=True)


def _drained(
    state: CaseState,
    price_book: PriceBook,
    now: datetime,
    gap_timeout: timedelta | None,
    *,
    duplicate_if_idle: bool,
) -> Outcome:
    alerts: list[dict[str, Any]] = []
    released: list[int] = []
    progressed = False
    while state.held:
        if state.next_sequence not in state.held:
            waited = now - state.held_since if state.held_since is not None else timedelta(0)
            if gap_timeout is None or waited < gap_timeout:
                break
            following = min(state.held)
            released.extend(range(state.next_sequence, following))
            state.next_sequence = following
        wire = state.held.pop(state.next_sequence)
        state.next_sequence += 1
        progressed = True
        alerts.extend(apply_event(state, parse_event(wire), price_book, now).alerts)
    state.held_since = None if not state.held else (state.held_since if not progressed else now)
    if duplicate_if_idle and not progressed:
        return Outcome(state, [], duplicate=True)
    return Outcome(state, alerts, released=tuple(released))


def _fold(state: CaseState, event: Event, price_book: PriceBook) -> None:
    occurred = event.occurred_at
    if state.first_event_at is None or occurred < state.first_event_at:
        state.first_event_at = occurred
    if state.last_event_at is None or occurred > state.last_event_at:
        state.last_event_at = occurred
    if isinstance(event, _COST_LINES):  # most events: checked first
        # A cost line names its department; it only stands in until the case's own
        # admission or transfer says where the patient is.
        # (its stamp, of priority 1, never outranks an admission's or a transfer's: only
        # worked out when it can matter)
        current = state.department_stamp
        if current is None or current[0] < 2:
            stamp = _stamp(1, event)
            if _newer(stamp, current):
                state.department, state.department_stamp = event.department, stamp
        charge = type(event) is Charge
        amount = event.amount if charge else -event.amount
        state.total_cost += amount
        category = event.category._value_  # the plain string (cheaper than .value)
        state.cost_by_category[category] = state.cost_by_category.get(category, Decimal(0)) + amount
        item = state.items.get(event.item_code)
        if item is None:
            item = ItemCost(event.item_code, event.item_name, category, Decimal(0), Decimal(0))
            state.items[event.item_code] = item
        item.quantity += event.quantity if charge else -event.quantity
        item.amount += amount
        state.memo.item_wire.pop(event.item_code, None)
        # the day a cost line belongs to is the hospital's day it occurred on, whenever
        # it arrived; a credit lowers the day it was posted on
        day = _local_day(state, occurred, price_book)[1]
        state.cost_by_day[day] = state.cost_by_day.get(day, Decimal(0)) + amount
        orderer = event.ordered_by or ""
        state.cost_by_orderer[orderer] = state.cost_by_orderer.get(orderer, Decimal(0)) + amount
    elif isinstance(event, Admitted):
        stamp = _stamp(2, event)
        if _newer(stamp, state.admitted_stamp):
            state.admitted_at, state.admitted_stamp = event.admitted_at, stamp
        if _newer(stamp, state.scheme_stamp):
            state.insurance_scheme, state.scheme_stamp = event.insurance_scheme, stamp
        if _newer(stamp, state.department_stamp):
            state.department, state.department_stamp = event.department, stamp
        if event.drg_code is not None and _newer(stamp, state.drg_stamp):
            state.drg_code, state.drg_stamp = event.drg_code, stamp
    elif isinstance(event, DrgAssigned):
        stamp = _stamp(2, event)
        if _newer(stamp, state.drg_stamp):
            state.drg_code, state.drg_stamp = event.drg_code, stamp
    elif isinstance(event, Transferred):
        stamp = _stamp(2, event)
        if _newer(stamp, state.department_stamp):
            state.department, state.department_stamp = event.department, stamp
    elif isinstance(event, _DISCHARGES):
        _fold_discharge(state, event)


def _fold_discharge(state: CaseState, event: Discharged | DischargeCancelled) -> None:
    """Discharges and their cancellations are one last-writer-wins register.

    The latest by `occurred_at` decides whether the case is discharged: a cancellation
    withdraws the discharges that occurred before it (the case is open again, and every
    figure the discharge froze is worked out as for an open case), a discharge that
    occurred after it closes the case again. At the same moment a cancellation wins, as
    it can only be about a discharge already recorded; then the larger event id. So the
    result does not depend on the order events arrive in, and a cancellation of a case
    not discharged changes nothing but is still applied (it outranks an earlier
    discharge that arrives late).
    """
    stamp = _stamp(2, event)
    cancels = isinstance(event, DischargeCancelled)
    current = state.discharged_stamp
    if current is not None:
        current_cancels = state.discharged_at is None
        if (stamp[1], cancels, stamp[2]) <= (current[1], current_cancels, current[2]):
            return
    state.discharged_stamp = stamp
    state.discharged_at = None if isinstance(event, DischargeCancelled) else event.discharged_at


def _price(state: CaseState, price_book: PriceBook) -> Pricing:
    pricing = _pricing(state, price_book)
    group, standard = pricing.group, pricing.standard
    state.drg_name = group.name if group else None
    state.avg_los_days = group.avg_los_days if group else None
    if standard is None:
        state.standard_cost = None
        state.ratio = None
        state.level = "unpriced"
        state.ratio_flag = None
        return pricing
    state.standard_cost = standard.standard_cost
    state.ratio = ratio_of(state.total_cost, standard.standard_cost)
    state.level = pricing.thresholds.level_for(state.total_cost, standard.standard_cost)
    state.ratio_flag = None
    if state.discharged_at is not None:
        high = HIGH_RATIO if group is None or group.high_ratio is None else group.high_ratio
        low = LOW_RATIO if group is None or group.low_ratio is None else group.low_ratio
        if state.total_cost > high * standard.standard_cost:
            state.ratio_flag = "high"
        elif state.total_cost < low * standard.standard_cost:
            state.ratio_flag = "low"
    return pricing


def _project(state: CaseState, pricing: Pricing, price_book: PriceBook) -> Projection | None:
    """The projection to discharge, on the case's own clock (its latest event's day)."""
    admission_day = pricing.on  # the local day of admission (or of the first event until then)
    projection = project_to_discharge(
        total=state.total_cost,
        standard=state.standard_cost,
        avg_los_days=state.avg_los_days,
        admission_day=admission_day,
        latest_day=_latest_day(state, price_book),
        one_off=_one_off(state.cost_by_category),
        discharged=state.discharged_at is not None,
    )
    state.projected_total = None if projection is None else projection.total
    return projection


def _one_off(cost_by_category: dict[str, Decimal]) -> Decimal:
    """The cost of the case's one-off categories so far."""
    total = ZERO
    for category in ONE_OFF_CATEGORIES:
        amount = cost_by_category.get(category)
        if amount is not None:
            total += amount
    return total


def _pricing(state: CaseState, price_book: PriceBook) -> Pricing:
    """The case's group, standard and thresholds; looked up again only when the price
    book, the DRG, the scheme or the moment of the pricing day moved (most events move
    none). The same instant under the same price book (so the same zone) is the same day."""
    moment = state.admitted_at or state.first_event_at
    known = state.memo.pricing
    if (
        known is not None
        and known.price_book is price_book
        and known.drg_code == state.drg_code
        and known.scheme == state.insurance_scheme
        and known.moment == moment
    ):
        return known
    on = None if moment is None else price_book.local_day(moment)
    hospital_id, drg_code, scheme = state.hospital_id, state.drg_code, state.insurance_scheme
    pricing = Pricing(
        price_book=price_book,
        drg_code=drg_code,
        scheme=scheme,
        moment=moment,
        on=on,
        group=None
        if on is None or drg_code is None
        else price_book.group(hospital_id, drg_code, on),
        standard=None if on is None else price_book.standard(hospital_id, drg_code, scheme, on),
        thresholds=price_book.thresholds_for(hospital_id, drg_code),
    )
    state.memo.pricing = pricing
    return pricing


def _alert_for(state: CaseState, event: Event | Reprice, now: datetime) -> dict[str, Any] | None:
    if state.level == "unpriced" or state.level == state.alert_level:
        return None
    previous: AlertLevel = state.alert_level
    level: AlertLevel = state.level
    if level == "none":
        transition = "resolved"
    elif LEVEL_RANK[level] > LEVEL_RANK[previous]:
        transition = "escalated"
    else:
        transition = "de-escalated"
    state.alert_seq += 1
    alert = {
        "alert_id": str(
            uuid.uuid5(ALERT_NAMESPACE, f"{state.hospital_id}/{state.case_id}/{state.alert_seq}")
        ),
        "kind": "level",
        "hospital_id": state.hospital_id,
        "case_id": state.case_id,
        "department": state.department,
        "drg_code": state.drg_code,
        "level": level,
        "previous_level": previous,
        "transition": transition,
        "total_cost": str(state.total_cost),
        "standard_cost": str(state.standard_cost),
        "ratio": str(state.ratio),
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "raised_at": now.astimezone(UTC).isoformat(),
        "top_contributors": state.top_contributors(),
        "projected_total": None,
        "projected_ratio": None,
        "sequence": state.alert_seq,
    }
    state.alert_level = level
    state.alerts = [*state.alerts, alert][-MAX_ALERTS_KEPT:]
    return alert


def _forecast_alert_for(
    state: CaseState,
    event: Event | Reprice,
    now: datetime,
    thresholds: Thresholds,
    projection: Projection | None,
) -> dict[str, Any] | None:
    """A forecast alert when the projection crosses red while the cost is still below blue.

    One per episode: an episode starts when the projection crosses red and ends only when
    it falls back below blue (or the case can no longer be projected); the next crossing
    starts another. A projection wavering around the red line as the days go by (each
    day observed lowers the pace a little, each day's charges raise it) is one episode,
    not one alert a day. A case already at blue or above has its level alerts. The
    alert waits until the stay has a full day behind it (its latest event on a later
    local day than admission): the admission day's pace alone, work-up and all, is noise.
    """
    if state.discharged_at is not None:
        # nothing to warn of; the episode is kept as it was, so that a discharge cancelled
        # as a mistake does not start a new one
        return None
    standard, projected = state.standard_cost, state.projected_total
    if standard is None or projected is None or projection is None:
        state.forecast_fired = False
        return None
    projected_level = thresholds.level_for(projected, standard)
    if projected_level == "none":
        state.forecast_fired = False
        return None
    if (
        projected_level != "red"
        or state.forecast_fired
        or state.level != "none"
        or projection.full_days < FORECAST_ALERT_MIN_FULL_DAYS
    ):
        return None
    state.forecast_fired = True
    state.forecast_seq += 1
    alert = {
        "alert_id": str(
            uuid.uuid5(
                ALERT_NAMESPACE,
                f"{state.hospital_id}/{state.case_id}/forecast/{state.forecast_seq}",
            )
        ),
        "kind": "forecast",
        "hospital_id": state.hospital_id,
        "case_id": state.case_id,
        "department": state.department,
        "drg_code": state.drg_code,
        # the level the projection reaches, from the level the case stands at
        "level": "red",
        "previous_level": state.alert_level,
        "transition": "projected",
        "total_cost": str(state.total_cost),
        "standard_cost": str(standard),
        "ratio": str(state.ratio),
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "raised_at": now.astimezone(UTC).isoformat(),
        "top_contributors": state.top_contributors(),
        "projected_total": str(projected),
        "projected_ratio": str(state.projected_ratio),
        # after the level alerts raised so far (and any raised by the same event)
        "sequence": state.alert_seq,
    }
    state.alerts = [*state.alerts, alert][-MAX_ALERTS_KEPT:]
    return alert


def _latest_day(state: CaseState, price_book: PriceBook) -> date | None:
    """The local day of the case's latest event (kept while that event stays the latest)."""
    latest, memo = state.last_event_at, state.memo
    if latest is None:
        return None
    if latest is not memo.latest_moment or memo.days_zone is not price_book.zone:
        memo.latest_day = _local_day(state, latest, price_book)[0]
        memo.latest_moment = latest
    return memo.latest_day


def _local_day(state: CaseState, moment: datetime, price_book: PriceBook) -> tuple[date, str]:
    """The hospital's day of `moment` (and its ISO form), remembered by quarter hour."""
    memo = state.memo
    if memo.days_zone is not price_book.zone:
        memo.days_zone, memo.days, memo.line_moment = price_book.zone, {}, None
    elif moment is memo.line_moment and memo.line_day is not None:
        return memo.line_day
    quarter = int(moment.timestamp()) // 900
    known = memo.days.get(quarter)
    if known is None:
        day = price_book.local_day(moment)
        known = memo.days[quarter] = (day, day.isoformat())
    memo.line_moment, memo.line_day = moment, known
    return known


def _stamp(priority: int, event: Event) -> Stamp:
    return (priority, event.occurred_at.astimezone(UTC).isoformat(), event.event_id)


def _newer(stamp: Stamp, current: Stamp | None) -> bool:
    return current is None or stamp > current
