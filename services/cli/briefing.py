"""`drgwatch briefing`: a department's weekly briefing, as the API serves it.

Through the target's briefing endpoint (services/cli/target.py): a database directly, or
a running service with a key that may read the department.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.cli.output import Output, table
from services.cli.target import Client, CommandError, add_target_options


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    briefing = commands.add_parser(
        "briefing",
        help="a department's weekly briefing: indicators, red cases and why, alerts handled",
    )
    add_target_options(briefing)
    briefing.add_argument("--hospital", required=True, help="hospital id")
    briefing.add_argument("--department", help="department code (default: every department)")
    briefing.add_argument(
        "--week", help="ISO week, e.g. 2026-W48 (default: the last week that has ended)"
    )
    briefing.add_argument(
        "--format",
        choices=["text", "json", "csv", "html"],
        default="text",
        help="text: a summary on the terminal (default); json, csv, html: the whole briefing",
    )
    briefing.add_argument("--lang", choices=["zh", "en"], default="zh", help="csv and html")
    briefing.add_argument("--output", type=Path, help="write to this file instead of stdout")
    # `--json` is `--format json`, as the other data commands spell it
    briefing.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


async def run(args: argparse.Namespace, client: Client, output: Output) -> None:
    chosen = "json" if args.json else args.format
    params: dict[str, Any] = {"format": "json" if chosen == "text" else chosen, "lang": args.lang}
    if args.department:
        params["department"] = args.department
    if args.week:
        params["week"] = args.week
    path = f"/v1/hospitals/{args.hospital}/briefings/weekly"
    text = await client.text("GET", path, params=params)
    if chosen != "text":
        _write(text, args.output)
        return
    _write("\n".join(summary(client.decoded(text))) + "\n", args.output)


def summary(briefing: dict[str, Any]) -> list[str]:
    """The briefing's headline figures, its red cases and its alerts, in a few lines."""
    figures = briefing["indicators"]
    department = briefing["department"] or "every department"
    lines = [
        f"{briefing['hospital_id']} {department}, week {briefing['week']}"
        f" ({briefing['from']} to {briefing['to']})",
        f"discharged cases {figures['cases']}, CMI {figures['cmi'] or '-'},"
        f" cost consumption index {figures['cost_consumption_index'] or '-'},"
        f" time consumption index {figures['time_consumption_index'] or '-'}",
        f"total cost {figures['total_cost'] or '-'}, standards {figures['total_standard'] or '-'},"
        f" surplus {figures['surplus'] or '-'}; drug share {figures['drug_share'] or '-'},"
        f" consumables share {figures['consumables_share'] or '-'}",
        f"high-ratio cases {figures['high_ratio_cases']}, low-ratio cases"
        f" {figures['low_ratio_cases']}",
        "",
        f"cases that turned red: {len(briefing['red_cases'])}",
    ]
    if briefing["red_cases"]:
        lines += table(
            ["case", "DRG", "ratio then", "now", "handling", "largest item"],
            [
                [
                    case["case_id"],
                    case["drg_code"] or "",
                    case["ratio_at_red"],
                    case["ratio"] or "",
                    case["alert_status"]
                    + (f" ({case['resolution_reason']})" if case["resolution_reason"] else ""),
                    case["causes"][0]["item_name"] if case["causes"] else "",
                ]
                for case in briefing["red_cases"]
            ],
        )
    tally = briefing["alert_tally"]
    raised = ", ".join(f"{level} {n}" for level, n in tally["raised"].items())
    handled = ", ".join(f"{status} {n}" for status, n in tally["by_status"].items()) or "none"
    lines += ["", f"alerts: escalations {raised}; by status {handled}"]
    found: dict[str, int] = {}
    for alert in briefing["alerts"]:
        if alert["kind"] == "rule":
            found[alert["rule_id"]] = found.get(alert["rule_id"], 0) + 1
    if found:
        by_rule = ", ".join(f"{rule_id} {n}" for rule_id, n in sorted(found.items()))
        lines.append(f"rule alerts: {sum(found.values())} ({by_rule})")
    return lines


def _write(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
