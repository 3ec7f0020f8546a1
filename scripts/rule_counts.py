"""How often each shipped case rule fires on the simulated hospital (`make demo`'s stays),
replayed through the cost core with the rules compiled into the price book, as the
worker applies them.

    .venv/bin/python scripts/rule_counts.py [--seeds 7 11] [--rules DIR] [--cases]
                                            [--earlier-months]

For every seed, the run's stays (the 14 days of history and the 12 live hours after it;
with --earlier-months also the stays discharged in the months before, as a new run posts
them) are applied event by event; the table gives, per rule, the stays it fired on and their
share of all stays, and how many findings it raised. `--cases` lists each finding's
case and rule. The planted cases (`PLANT-...`) are counted apart: they are there to fire.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.casecost.apply import apply_event, new_case  # noqa: E402
from services.casecost.events import parse_event  # noqa: E402
from services.casecost.pricing import Catalogue, PriceBook  # noqa: E402
from services.casecost.rules import CaseRules  # noqa: E402
from services.casecost.state import CaseState  # noqa: E402
from services.demo.plants import archive_events, plant_departments, run_events  # noqa: E402
from services.demo.run import sample_hospital  # noqa: E402
from services.demo.simulation import Timeline, plan_cases  # noqa: E402
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
ANCHOR = datetime(2026, 12, 1, 2, 30, 15, tzinfo=UTC)
LIVE = timedelta(hours=12)


def findings_of_run(
    seed: int, rules_dir: Path, earlier_months: bool = False
) -> tuple[set[str], list[dict[str, str]]]:
    """The case ids of a run and every rule finding raised as its events are applied."""
    hospital = sample_hospital(
        run_id="RC", seed=seed, anchor=ANCHOR, zone=ZONE, hospital_id="H001", history_days=14
    )
    catalogue = Catalogue(1, "sample", ANCHOR.date().replace(month=1, day=1),
                          hospital.base_rates, hospital.groups)  # fmt: skip
    rules = CaseRules.compile(load_rule_files(rules_dir), ZONE)
    book = PriceBook(version=1, catalogues=(catalogue,), zone=ZONE, case_rules=rules)
    until = ANCHOR + LIVE
    timeline = Timeline(ANCHOR)
    states: dict[str, CaseState] = {}
    findings: list[dict[str, str]] = []
    events = run_events(hospital, plant_departments(hospital, plan_cases(hospital, until)))
    if earlier_months:
        events = archive_events(hospital) + events
    for event in events:
        if event.at > until:
            continue
        parsed = parse_event(timeline.stamped(event) if event.at <= ANCHOR else event.payload)
        state = states.setdefault(parsed.case_id, new_case(parsed.hospital_id, parsed.case_id))
        before = len(state.alerts)
        apply_event(state, parsed, book, event.at)
        findings += [alert for alert in state.alerts[before:] if alert.get("kind") == "rule"]
    return set(states), findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES_DIR)
    parser.add_argument("--cases", action="store_true", help="list every finding")
    parser.add_argument(
        "--earlier-months", action="store_true", help="also the months before the history"
    )
    args = parser.parse_args()
    rule_ids = [rule.id for rule in load_rule_files(args.rules).case_rules]
    for seed in args.seeds:
        cases, findings = findings_of_run(seed, args.rules, args.earlier_months)
        ordinary = {case for case in cases if "-PLANT-" not in case}
        stays: dict[str, set[str]] = defaultdict(set)
        raised: Counter[str] = Counter()
        planted: dict[str, set[str]] = defaultdict(set)
        for finding in findings:
            if finding["case_id"] in ordinary:
                stays[finding["rule_id"]].add(finding["case_id"])
                raised[finding["rule_id"]] += 1
            else:
                planted[finding["rule_id"]].add(finding["case_id"])
        print(f"seed {seed}: {len(ordinary)} ordinary stays, {len(cases) - len(ordinary)} planted")
        print(f"  {'rule':<20} {'stays':>6} {'share':>7} {'findings':>9} {'planted':>8}")
        for rule_id in rule_ids:
            count = len(stays[rule_id])
            print(
                f"  {rule_id:<20} {count:>6} {count / max(1, len(ordinary)):>7.1%} "
                f"{raised[rule_id]:>9} {len(planted[rule_id]):>8}"
            )
        if args.cases:
            for finding in sorted(findings, key=lambda f: (f["case_id"], f["rule_id"])):
                print(f"  {finding['case_id']:<28} {finding['rule_id']:<20} {finding['text_en']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
