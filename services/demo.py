"""A simulated hospital day: admissions, charges, a regroup, credits and discharges.

`simulated_day()` builds the events (deterministic for a seed) from the sample
catalogue; `run_demo()` posts them to a running service, spread over a minute, so a
newcomer sees cases move and alerts fire.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from services.casecost.events import TIMESTAMP_FIELDS
from services.reference import service as catalogue_service

CENT = Decimal("0.01")
DEPARTMENTS = {
    "F": "CARDIO",
    "I": "ORTHO",
    "G": "GENSURG",
    "E": "RESP",
    "R": "ONCO",
    "B": "NEURO",
}
ITEMS = [
    ("D-CEFTRIAXONE", "Ceftriaxone 1 g injection", "drug", Decimal("38.50")),
    ("D-HEPARIN", "Heparin sodium 12500 IU", "drug", Decimal("26.80")),
    ("D-ALBUMIN", "Human albumin 10 g", "drug", Decimal("385.00")),
    ("C-STENT-IMP", "Coronary drug-eluting stent (imported)", "consumable", Decimal("7800.00")),
    ("C-STENT-DOM", "Coronary drug-eluting stent (domestic)", "consumable", Decimal("770.00")),
    ("C-SUTURE", "Absorbable suture", "consumable", Decimal("95.00")),
    ("E-CT-CHEST", "Chest CT", "exam", Decimal("320.00")),
    ("E-MRI-HEAD", "Head MRI", "exam", Decimal("620.00")),
    ("L-CBC", "Complete blood count", "lab", Decimal("25.00")),
    ("L-BIOCHEM", "Biochemistry panel", "lab", Decimal("180.00")),
    ("P-PCI", "Percutaneous coronary intervention", "procedure", Decimal("4200.00")),
    ("P-ANESTH", "General anaesthesia", "procedure", Decimal("1500.00")),
    ("B-WARD", "Ward bed day", "bed", Decimal("80.00")),
    ("B-ICU", "ICU bed day", "bed", Decimal("1200.00")),
    ("N-LEVEL1", "Level I nursing day", "nursing", Decimal("45.00")),
]


@dataclass(frozen=True)
class PlannedCase:
    case_id: str
    drg_code: str
    department: str
    scheme: str
    standard: Decimal
    target_ratio: Decimal


def simulated_day(
    *, seed: int = 7, cases: int = 40, hospital_id: str = "H001", start: datetime | None = None
) -> list[dict[str, Any]]:
    """Events of one simulated day, in posting order (a few out of order on purpose).

    Without `start`, the day ends now: ingest refuses events dated after they are posted,
    and the longest cases run on for more than a day.
    """
    if start is None:
        now = datetime.now(UTC).replace(microsecond=0)
        planned = _simulated_day(seed, cases, hospital_id, now)
        start = now - (_latest(planned) - now)
    return _simulated_day(seed, cases, hospital_id, start)


def _latest(events: list[dict[str, Any]]) -> datetime:
    return max(
        datetime.fromisoformat(event[field])
        for event in events
        for field in TIMESTAMP_FIELDS
        if field in event
    )


def _simulated_day(
    seed: int, cases: int, hospital_id: str, start: datetime
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    sample = catalogue_service.sample_catalogue()
    rates = sample.base_rates
    groups = [g for g in sample.groups if g.drg_code[0] in DEPARTMENTS and g.standard_cost is None]
    events: list[tuple[datetime, dict[str, Any]]] = []
    serial = 0

    def event(kind: str, case: PlannedCase, at: datetime, **fields: Any) -> None:
        nonlocal serial
        serial += 1
        events.append(
            (
                at,
                {
                    "event_id": f"demo-{seed}-{serial:06d}",
                    "type": kind,
                    "hospital_id": hospital_id,
                    "case_id": case.case_id,
                    "occurred_at": at.isoformat(),
                    **fields,
                },
            )
        )

    for number in range(cases):
        group = rng.choice(groups)
        scheme = rng.choice(["employee", "resident"])
        standard = (group.weight * rates[scheme]).quantize(CENT, ROUND_HALF_UP)
        target = Decimal(str(rng.choice([0.6, 0.8, 0.91, 0.93, 0.96, 0.98, 1.05, 1.2, 1.5, 2.3])))
        case = PlannedCase(
            f"C{number + 1:05d}",
            group.drg_code,
            DEPARTMENTS[group.drg_code[0]],
            scheme,
            standard,
            target,
        )
        admitted = start + timedelta(minutes=rng.randint(0, 240))
        grouped_later = rng.random() < 0.15  # the working DRG arrives after admission
        event(
            "admitted",
            case,
            admitted,
            department=case.department,
            drg_code=None if grouped_later else case.drg_code,
            insurance_scheme=scheme,
            admitted_at=admitted.isoformat(),
        )
        if grouped_later:
            event("drg_assigned", case, admitted + timedelta(hours=2), drg_code=case.drg_code)
        spent = Decimal(0)
        charged: list[tuple[str, str, str, Decimal]] = []
        at = admitted
        goal = standard * target
        while spent < goal:
            at += timedelta(minutes=rng.randint(5, 60))
            # never overshoot the planned ratio by more than the cheapest line
            affordable = [item for item in ITEMS if item[3] <= goal - spent] or [ITEMS[8]]
            code, name, category, price = rng.choice(affordable)
            quantity = Decimal(rng.choice([1, 1, 1, 2, 3]))
            while quantity > 1 and quantity * price > goal - spent:
                quantity -= 1
            amount = (quantity * price).quantize(CENT, ROUND_HALF_UP)
            event(
                "charge",
                case,
                at,
                department=case.department,
                item_code=code,
                item_name=name,
                category=category,
                quantity=str(quantity),
                unit_price=str(price),
                amount=str(amount),
                order_id=f"O{serial}",
            )
            spent += amount
            charged.append((code, name, category, price))
        if target > 1 and charged and rng.random() < 0.3:  # a billing correction
            code, name, category, price = max(charged, key=lambda line: line[3])
            event(
                "credit",
                case,
                at + timedelta(minutes=30),
                department=case.department,
                item_code=code,
                item_name=name,
                category=category,
                quantity="1",
                unit_price=str(price),
                amount=str(price),
            )
        if rng.random() < 0.4:
            discharged = at + timedelta(hours=1)
            event("discharged", case, discharged, discharged_at=discharged.isoformat())
    events.sort(key=lambda pair: pair[0])
    ordered = [payload for _, payload in events]
    for index in range(5, len(ordered) - 1, 97):  # a little out-of-order arrival
        ordered[index], ordered[index + 1] = ordered[index + 1], ordered[index]
    return ordered


async def run_demo(url: str, *, seconds: float = 45.0, cases: int = 40) -> int:
    events = simulated_day(cases=cases)
    batches = [events[i : i + 10] for i in range(0, len(events), 10)]
    pause = seconds / max(1, len(batches))
    accepted = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for batch in batches:
            response = await client.post("/v1/events", json={"events": batch})
            response.raise_for_status()
            accepted += response.json()["accepted"]
            # one duplicate resend now and then, as integration engines do
            if random.random() < 0.05:
                await client.post("/v1/events", json={"events": batch[:1]})
            await asyncio.sleep(pause)
        alerts = (await client.get("/v1/alerts", params={"limit": 500})).json()["items"]
    print(f"demo: {accepted} events accepted for {cases} cases; {len(alerts)} alerts so far")
    return 0
