"""Post the simulated hospital to a running drgwatch: a fortnight of history, then live.

A run starts at its anchor (the real clock when it starts). It posts the history (every
stay in hospital during the last `history_days` local days, each event dated when it
happened) as fast as ingest takes it, then goes live: the next `live_hours` of the
hospital are posted over `live_minutes` of real time, each event dated the real moment
it is posted. Every run has ids of its own (the run id is in every case and event id),
so a second run on the same database adds a new fortnight beside the first. So that the
hospital does not then hold two censuses, a new run first discharges the stays the
earlier run of the same data directory left in hospital, at the moment that run stopped.

The run's state (run id, seed, anchor, the live segments so far and how far the
hospital got) is kept in `demo-run.json` in the data directory after every posting;
`resume` reads it and continues the same stays where they stopped, from the real clock
of the resumption. Events the API refuses are printed with their reason and the run
fails; so does a refused posting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from services.casecost.pricing import DrgGroup
from services.demo.hospital import DEPARTMENTS
from services.demo.plants import archive_events, plant_departments, run_events
from services.demo.simulation import (
    CasePlan,
    Hospital,
    Segment,
    TimedEvent,
    Timeline,
    archive_start,
    plan_cases,
)
from services.reference import service as catalogue_service

STATE_FILE = "demo-run.json"
BATCH_SIZE = 500
SHOWN_REJECTIONS = 20
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
Echo = Callable[[str], None]


class DemoFailed(Exception):
    """The API refused a posting or an event; the message says which and why."""


@dataclass(frozen=True)
class RunState:
    """What `resume` needs to continue a run, as kept in `demo-run.json`."""

    run_id: str
    seed: int
    hospital_id: str
    anchor: datetime
    history_days: int
    segments: tuple[Segment, ...]
    simulated_until: datetime
    departments: tuple[str, ...] | None = None  # the department codes simulated (None: all)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "hospital_id": self.hospital_id,
            "anchor": self.anchor.isoformat(),
            "history_days": self.history_days,
            "segments": [
                {
                    "sim_start": segment.sim_start.isoformat(),
                    "real_start": segment.real_start.isoformat(),
                    "speed": segment.speed,
                }
                for segment in self.segments
            ],
            "simulated_until": self.simulated_until.isoformat(),
            "departments": None if self.departments is None else list(self.departments),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        return cls(
            run_id=data["run_id"],
            seed=int(data["seed"]),
            hospital_id=data["hospital_id"],
            anchor=datetime.fromisoformat(data["anchor"]),
            history_days=int(data["history_days"]),
            segments=tuple(
                Segment(
                    datetime.fromisoformat(segment["sim_start"]),
                    datetime.fromisoformat(segment["real_start"]),
                    float(segment["speed"]),
                )
                for segment in data["segments"]
            ),
            simulated_until=datetime.fromisoformat(data["simulated_until"]),
            departments=None if data.get("departments") is None else tuple(data["departments"]),
        )


def sample_hospital(
    *, run_id: str, seed: int, anchor: datetime, zone: tzinfo, hospital_id: str, history_days: int
) -> Hospital:
    """The simulated hospital, priced by the shipped sample catalogue (the one
    `drgwatch up` loads)."""
    sample = catalogue_service.sample_catalogue()
    groups = {
        group.drg_code: DrgGroup(
            drg_code=group.drg_code,
            name=group.name,
            weight=Decimal(group.weight),
            avg_los_days=None if group.avg_los_days is None else Decimal(group.avg_los_days),
            standard_cost=None if group.standard_cost is None else Decimal(group.standard_cost),
        )
        for group in sample.groups
    }
    return Hospital(
        run_id=run_id,
        seed=seed,
        anchor=anchor,
        zone=zone,
        groups=groups,
        base_rates={scheme: Decimal(rate) for scheme, rate in sample.base_rates.items()},
        hospital_id=hospital_id,
        history_days=history_days,
    )


def new_run(
    *,
    now: datetime,
    zone: tzinfo,
    seed: int | None,
    hospital_id: str,
    history_days: int,
    departments: Sequence[str] | None = None,
) -> RunState:
    """A fresh run anchored at `now`: its id is the local time to the second."""
    anchor = now.astimezone(UTC).replace(microsecond=0)
    return RunState(
        run_id=anchor.astimezone(zone).strftime("%y%m%d%H%M%S"),
        seed=int(anchor.timestamp()) if seed is None else seed,
        hospital_id=hospital_id,
        anchor=anchor,
        history_days=history_days,
        segments=(),
        simulated_until=anchor,
        departments=None if departments is None else tuple(departments),
    )


def run_hospital(state: RunState, zone: tzinfo) -> Hospital:
    """The simulated hospital of a run, with the departments it simulates."""
    hospital = sample_hospital(
        run_id=state.run_id,
        seed=state.seed,
        anchor=state.anchor,
        zone=zone,
        hospital_id=state.hospital_id,
        history_days=state.history_days,
    )
    if state.departments is None:
        return hospital
    return replace(hospital, departments={code: DEPARTMENTS[code] for code in state.departments})


def closing_discharges(state: RunState, zone: tzinfo) -> list[dict[str, Any]]:
    """Discharges for the stays a run left in hospital (admitted by the point it reached,
    not discharged by then), dated the real moment it reached that point.

    Their event ids are fixed by the case, so posting them again is a duplicate."""
    hospital = run_hospital(state, zone)
    reached = state.simulated_until
    moment = Timeline(state.anchor, state.segments).to_real(reached).isoformat()
    return [
        {
            "event_id": f"{plan.case_id}-closed",
            "type": "discharged",
            "hospital_id": hospital.hospital_id,
            "case_id": plan.case_id,
            "occurred_at": moment,
            "discharged_at": moment,
        }
        for plan in plan_cases(hospital, reached)
        if plan.admitted_at <= reached < plan.discharged_at
    ]


def load_state(state_dir: Path) -> RunState | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    return RunState.from_json(json.loads(path.read_text(encoding="utf-8")))


def save_state(state_dir: Path, state: RunState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    draft = path.with_suffix(".tmp")
    draft.write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")
    draft.replace(path)  # never a half-written state


async def run_demo(
    client: httpx.AsyncClient,
    *,
    state_dir: Path,
    resume: bool = False,
    seed: int | None = None,
    hospital_id: str = "H001",
    history_days: int = 14,
    live_minutes: float = 4.0,
    live_hours: float = 12.0,
    zone: tzinfo | None = None,
    departments: Sequence[str] | None = None,
    earlier_months: bool = True,
    clock: Clock | None = None,
    sleep: Sleep = asyncio.sleep,
    echo: Echo = print,
) -> RunState:
    """Post a run (or resume the last one) through `client`; returns the run's state.

    `departments` limits the hospital to those department codes (all by default);
    `earlier_months` posts, before the history, the stays discharged in the months before
    it (`archive_events`: what the department rules judge);
    `clock` and `sleep` stand in for the real ones in tests. Raises DemoFailed when the
    API refuses a posting or an event.
    """
    zone = zone or ZoneInfo("Asia/Shanghai")
    now = clock or (lambda: datetime.now(UTC))
    earlier = load_state(state_dir)
    if resume:
        if earlier is None:
            raise DemoFailed(f"nothing to resume: no {STATE_FILE} in {state_dir}")
        state = earlier
        echo(f"demo: resuming run {state.run_id} from {_local(state.simulated_until, zone)}")
    else:
        state = new_run(
            now=now(),
            zone=zone,
            seed=seed,
            hospital_id=hospital_id,
            history_days=history_days,
            departments=departments,
        )
    hospital = run_hospital(state, zone)
    span = timedelta(hours=live_hours)
    live_end = state.simulated_until + span
    plans = plant_departments(hospital, plan_cases(hospital, live_end))
    events = run_events(hospital, plans)
    await _name_departments(client, state.hospital_id, echo)
    if not resume and earlier is not None and earlier.run_id != state.run_id:
        closing = closing_discharges(earlier, zone)
        echo(
            f"demo: run {earlier.run_id} left {len(closing)} stays in hospital; discharging"
            " them at the moment it stopped (`--resume` continues a run instead)"
        )
        await _post(client, closing, echo)
    if not resume and earlier_months:
        archive = [Timeline(state.anchor).stamped(event) for event in archive_events(hospital)]
        echo(
            f"demo: posting the earlier months: {len(archive)} events of the stays discharged "
            f"from {_local(archive_start(hospital), zone)} to the history"
        )
        started = now()
        accepted = await _post(client, archive, echo)
        seconds = (now() - started).total_seconds()
        echo(f"demo: earlier months posted: {accepted} events accepted in {seconds:.0f} s")
    if not resume:
        history = [event for event in events if event.at <= state.anchor]
        open_at_anchor = sum(plan.discharged_at > state.anchor for plan in plans)
        echo(
            f"demo: run {state.run_id} (seed {state.seed}), hospital {state.hospital_id}: "
            f"{len(plans)} stays in {len(hospital.departments)} departments, {open_at_anchor} in "
            f"hospital now; posting {state.history_days} days of history ({len(history)} events)"
        )
        timeline = Timeline(state.anchor)
        started = now()
        accepted = await _post(client, [timeline.stamped(event) for event in history], echo)
        seconds = (now() - started).total_seconds()
        echo(f"demo: history posted: {accepted} events accepted in {seconds:.0f} s")
        save_state(state_dir, state)
        await _set_targets(client, state.hospital_id, demo_targets(hospital, plans), echo)
    live = [event for event in events if state.simulated_until < event.at <= live_end]
    segment = Segment(
        sim_start=state.simulated_until,
        real_start=now().replace(microsecond=0) + timedelta(seconds=1),
        speed=span.total_seconds() / (live_minutes * 60),
    )
    state = replace(state, segments=(*state.segments, segment))
    timeline = Timeline(state.anchor, state.segments)
    echo(
        f"demo: live: the next {live_hours:g} hours of the hospital in {live_minutes:g} minutes "
        f"({len(live)} events), dated by the real clock"
    )
    state = await _live(
        client,
        live,
        timeline=timeline,
        segment=segment,
        live_end=live_end,
        state=state,
        state_dir=state_dir,
        now=now,
        sleep=sleep,
        echo=echo,
        zone=zone,
    )
    echo(
        f"demo: run {state.run_id} done ({_local(state.simulated_until, zone)} in the "
        "hospital's own time); continue its stays with `make demo ARGS=--resume` "
        "(or `drgwatch demo --resume`)"
    )
    return state


async def _live(
    client: httpx.AsyncClient,
    events: list[TimedEvent],
    *,
    timeline: Timeline,
    segment: Segment,
    live_end: datetime,
    state: RunState,
    state_dir: Path,
    now: Clock,
    sleep: Sleep,
    echo: Echo,
    zone: tzinfo,
) -> RunState:
    """Post each live event once the real clock reaches its time; report every minute."""
    pending = sorted(events, key=lambda event: event.at)
    posted = admissions = discharges = 0
    reported = now()
    end = segment.to_real(live_end)
    while True:
        current = now()
        reached = live_end
        if current < end:
            elapsed = (current - segment.real_start) * segment.speed
            reached = min(reached, segment.sim_start + elapsed)
        # due by simulated time, so the point saved below covers every event posted (their
        # real times are whole seconds and would let an event a moment past it through)
        due = [event for event in pending if event.at <= reached]
        pending = [event for event in pending if event.at > reached]
        # saved before posting: a resumption never posts an event again with other times
        state = replace(state, simulated_until=max(state.simulated_until, reached))
        save_state(state_dir, state)
        if due:
            payloads = [timeline.stamped(event) for event in due]
            posted += await _post(client, payloads, echo)
            admissions += sum(payload["type"] == "admitted" for payload in payloads)
            discharges += sum(payload["type"] == "discharged" for payload in payloads)
        finished = not pending and current >= end
        if (current - reported).total_seconds() >= 60 or finished:
            reported = current
            echo(
                f"demo: live {current.astimezone(zone):%H:%M:%S}: "
                f"{posted} events ({admissions} admissions, {discharges} discharges) so far"
            )
        if finished:
            return replace(state, simulated_until=live_end)
        if not pending:
            await sleep(max(0.0, (end - current).total_seconds()))
            continue
        wait = (segment.to_real(pending[0].at) - now()).total_seconds()
        await sleep(min(2.0, max(0.2, wait)))


async def _post(client: httpx.AsyncClient, payloads: Sequence[dict[str, Any]], echo: Echo) -> int:
    """Post in batches; print every refused event with its reason and fail on any."""
    accepted = 0
    for start in range(0, len(payloads), BATCH_SIZE):
        batch = list(payloads[start : start + BATCH_SIZE])
        response = await client.post("/v1/events", json={"events": batch})
        if response.status_code != 202:
            raise DemoFailed(
                f"the API refused a posting of {len(batch)} events: "
                f"HTTP {response.status_code} {response.text[:500]}"
            )
        body = response.json()
        accepted += body["accepted"]
        rejected = [result for result in body["results"] if result["status"] == "rejected"]
        for result in rejected[:SHOWN_REJECTIONS]:
            reasons = "; ".join(
                f"{error['field']}: {error['reason']}" for error in result["errors"]
            )
            echo(f"demo: rejected {result['event_id']}: {reasons}")
        if rejected:
            raise DemoFailed(f"the API rejected {len(rejected)} of {len(batch)} events")
    return accepted


async def _name_departments(client: httpx.AsyncClient, hospital_id: str, echo: Echo) -> None:
    """Give the departments their Chinese and English names where the API takes them
    (an API without department names answers 404 or 405: nothing to do)."""
    for department in DEPARTMENTS.values():
        response = await client.put(
            f"/v1/hospitals/{hospital_id}/departments/{department.code}",
            json={"name_zh": department.name_zh, "name_en": department.name_en},
        )
        if response.status_code in (404, 405):
            return
        if response.status_code >= 400:
            echo(
                f"demo: department names not set ({department.code}: HTTP "
                f"{response.status_code} {response.text[:200]})"
            )
            return


# the departments' targets: room above their expected figures for most, a ceiling below
# them for every third (in code order), so the page shows both paces
TARGET_ROOM = Decimal("1.2")
TIGHT_TARGET = Decimal("0.65")
CENT = Decimal("0.01")


def _period_days(period: str) -> tuple[date, int]:
    """The first day of a year (`2026`) or a month (`2026-12`) and its number of days."""
    if len(period) == 4:
        start = date(int(period), 1, 1)
        return start, (date(start.year + 1, 1, 1) - start).days
    start = date(int(period[:4]), int(period[5:7]), 1)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start, (following - start).days


def demo_targets(hospital: Hospital, plans: Sequence[CasePlan]) -> dict[tuple[str, str], Any]:
    """Each simulated department's targets for the anchor's month and year, as PUT bodies.

    They come from the hospital's own expected figures: the stays its history discharges
    per day and their mean expected cost (payment standard x planned cost ratio). The demo
    has discharges from its history days only, so a period's figures are expected over
    the part of it the history covers and carried to the period's end at that pace, as
    the progress endpoint projects them. Most departments get 20% of room on cost per
    case and total cost; every third gets a ceiling 35% below (over pace: the planned
    cost ratios run above what the stays end up costing, so a tighter cut would not
    show); the cases target is the expected count.
    """
    today = hospital.anchor_day
    first_day = today - timedelta(days=hospital.history_days)
    targets: dict[tuple[str, str], Any] = {}
    for index, code in enumerate(sorted(hospital.departments)):
        discharged = [
            plan
            for plan in plans
            if plan.pathway.department == code
            and first_day <= plan.discharged_at.astimezone(hospital.zone).date() < today
        ]
        if not discharged:
            continue
        per_day = Decimal(len(discharged)) / hospital.history_days
        per_case = sum(
            (plan.standard * Decimal(str(plan.target_ratio)) for plan in discharged), Decimal(0)
        ) / len(discharged)
        room = TIGHT_TARGET if index % 3 == 2 else TARGET_ROOM
        for period in (f"{today:%Y-%m}", f"{today:%Y}"):
            start, days = _period_days(period)
            covered = (today - max(start, first_day)).days + 1
            elapsed = (today - start).days + 1
            cases = per_day * covered * days / elapsed
            targets[(code, period)] = {
                "cases": max(1, int(cases.to_integral_value(rounding=ROUND_HALF_UP))),
                "cost_per_case": str((per_case * room).quantize(CENT, rounding=ROUND_HALF_UP)),
                "total_cost": str((cases * per_case * room).quantize(CENT, rounding=ROUND_HALF_UP)),
            }
    return targets


async def _set_targets(
    client: httpx.AsyncClient, hospital_id: str, targets: dict[tuple[str, str], Any], echo: Echo
) -> None:
    """Set the departments' targets where the API takes them (an API without targets, or
    a key that may not set them, answers 404, 405 or 403: nothing to do)."""
    for (department, period), body in targets.items():
        response = await client.put(
            f"/v1/hospitals/{hospital_id}/targets/{department}/{period}", json=body
        )
        if response.status_code in (403, 404, 405):
            return
        if response.status_code >= 400:
            echo(
                f"demo: targets not set ({department} {period}: HTTP "
                f"{response.status_code} {response.text[:200]})"
            )
            return
    departments = len({department for department, _ in targets})
    echo(f"demo: targets set for {departments} departments (this month and this year)")


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def run_demo_at(
    url: str,
    *,
    state_dir: Path,
    resume: bool,
    seed: int | None,
    live_minutes: float,
    live_hours: float,
    history_days: int,
    zone: tzinfo,
    api_key: str | None,
    earlier_months: bool = True,
) -> int:
    """The command line's demo: run against the service at `url`; 1 when it fails."""
    headers = {"X-API-Key": api_key} if api_key else {}
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as client:
        try:
            await run_demo(
                client,
                state_dir=state_dir,
                resume=resume,
                seed=seed,
                history_days=history_days,
                live_minutes=live_minutes,
                live_hours=live_hours,
                zone=zone,
                earlier_months=earlier_months,
                echo=lambda line: print(line, flush=True),
            )
        except DemoFailed as failure:
            print(f"demo: FAILED: {failure}", flush=True)
            return 1
    return 0
