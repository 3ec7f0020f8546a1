"""How well the projection to discharge and the forecast alert do on the simulated
hospital (`make demo`'s stays), replayed through the cost core.

    .venv/bin/python scripts/forecast_accuracy.py [--seeds 1 2 3]

For every stay discharged within the simulated weeks, the projection at the end of each
local day of the stay from its second up to the day before discharge is compared with
the stay's final cost: the median and 90th percentile of |projected - final| /
final. The forecast alert is judged by its precision (of the stays it fired on, the
share that ended over red) against the base rate (of the stays still below blue on
their second day, the share that ended over red), and its recall (of the stays that
ended over red from below blue on their second day, the share it warned of).

The simulated hospital draws each stay's final cost from a distribution of its own
making, so these figures say how the method does on plausible stays, not on a real
hospital's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.casecost.apply import apply_event, new_case  # noqa: E402
from services.casecost.events import parse_event  # noqa: E402
from services.casecost.pricing import DEFAULT_THRESHOLDS, Catalogue, PriceBook  # noqa: E402
from services.demo.run import sample_hospital  # noqa: E402
from services.demo.simulation import case_events, plan_cases  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
ANCHOR = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def measure(seed: int) -> dict[str, float]:
    hospital = sample_hospital(
        run_id=f"eval{seed}",
        seed=seed,
        anchor=ANCHOR,
        zone=ZONE,
        hospital_id="H001",
        history_days=28,
    )
    book = PriceBook(
        version=1,
        catalogues=(
            Catalogue(1, "sample", date(2026, 1, 1), hospital.base_rates, hospital.groups),
        ),
        zone=ZONE,
    )
    errors: list[float] = []
    fired = fired_red = base = base_red = 0
    for plan in plan_cases(hospital, ANCHOR):
        if plan.discharged_at > ANCHOR:
            continue
        state = new_case(hospital.hospital_id, plan.case_id)
        projections: dict[int, Decimal] = {}  # the last of each local day
        forecast = False
        level_on_day_two: str | None = None
        admitted_day = plan.admitted_at.astimezone(ZONE).date()
        for timed in case_events(hospital, plan):
            payload = dict(timed.payload)
            for name in ("occurred_at", "admitted_at", "discharged_at"):
                if name in payload and isinstance(payload[name], datetime):
                    payload[name] = payload[name].isoformat()
            outcome = apply_event(state, parse_event(payload), book, timed.at)
            state = outcome.state
            forecast = forecast or any(a["kind"] == "forecast" for a in outcome.alerts)
            day = (timed.at.astimezone(ZONE).date() - admitted_day).days
            if day >= 1 and level_on_day_two is None:
                level_on_day_two = state.level
            if day >= 1 and state.discharged_at is None and state.projected_total is not None:
                projections[day] = state.projected_total
        if state.discharged_at is None or state.standard_cost is None or not state.total_cost:
            continue
        final = state.total_cost
        discharge_day = (state.discharged_at.astimezone(ZONE).date() - admitted_day).days
        errors.extend(
            float(abs(p - final) / final) for d, p in projections.items() if d < discharge_day
        )
        ended_red = final > DEFAULT_THRESHOLDS.red * state.standard_cost
        if level_on_day_two == "none":
            base += 1
            base_red += ended_red
        if forecast:
            fired += 1
            fired_red += ended_red
    errors.sort()
    return {
        "projections": len(errors),
        "median_error": statistics.median(errors),
        "p90_error": errors[int(len(errors) * 0.9)],
        "fired": fired,
        "precision": fired_red / fired if fired else 0.0,
        "base_rate": base_red / base if base else 0.0,
        "recall": fired_red / base_red if base_red else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    for seed in parser.parse_args().seeds:
        m = measure(seed)
        print(
            f"seed {seed}: {m['projections']} projections, median error"
            f" {m['median_error']:.1%}, 90th percentile {m['p90_error']:.1%};"
            f" forecast alerts on {m['fired']} stays, {m['precision']:.0%} ended red"
            f" (base rate {m['base_rate']:.0%}), recall {m['recall']:.0%}"
        )


if __name__ == "__main__":
    main()
