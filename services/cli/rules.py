"""`drgwatch rules validate [DIR]`: check monitoring rule files before they are loaded;
`drgwatch rules reload [DIR]`: import them into the rule registry without a restart.

`validate` reads DIR (default: the rules drgwatch ships, services/reference/rules/) as the
service will (services/reference/rules.py) and prints the rules it found, one line each,
or every problem (file:line: rule: field: reason) on stderr. Exit status: 0 valid; 2
problems.

`reload` goes through POST /v1/rules/reload of the target (services/cli/target.py): on a
database, it reads DIR (default DRGWATCH_RULES_DIR, else the shipped rules); on a running
service (--url), the service reads its own rules directory. It prints what changed, rule
by rule; workers evaluate the rules in force from their next batch. A file refused
(invalid, or changed without a new version) refuses the whole reload: nothing changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.casecost.rules import RuleSet
from services.cli.output import Output, table
from services.cli.target import Client, add_target_options
from services.reference.exceptions import RuleFilesRefused
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files, rule_files


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = commands.add_parser("rules", help="monitoring rules: check rule files")
    actions = rules.add_subparsers(dest="rules_command", required=True)
    validate = actions.add_parser(
        "validate", help="check a directory of rule files (*.yaml, *.yml, *.json)"
    )
    validate.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=DEFAULT_RULES_DIR,
        help="a directory or one file (default: the shipped rules)",
    )
    validate.add_argument("--json", action="store_true", help="print the rules as JSON")
    reload = actions.add_parser(
        "reload",
        help="import the rule files into the rule registry; workers use them from the next batch",
    )
    reload.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=None,
        help="a directory or one file (default: DRGWATCH_RULES_DIR, else the shipped rules);"
        " not with --url: a service reads its own",
    )
    add_target_options(reload)
    reload.add_argument("--json", action="store_true", help="print the API's JSON answer")


async def run_reload(args: argparse.Namespace, client: Client, out: Output) -> None:
    """POST /v1/rules/reload and print what changed."""
    report = await client.request("POST", "/v1/rules/reload")
    if out.json(report):
        return
    for line in reload_lines(report):
        out.line(line)


def reload_lines(report: dict[str, Any]) -> list[str]:
    """One line per rule that changed or was kept back, then a summary."""
    lines = [
        f"{change['rule_id']}: {change['message']}"
        for change in report["changes"]
        if change["action"] != "unchanged"
    ]
    counts: dict[str, int] = {}
    for change in report["changes"]:
        counts[change["action"]] = counts.get(change["action"], 0) + 1
    summary = ", ".join(f"{count} {action}" for action, count in counts.items()) or "no rules"
    verdict = "registry updated" if report["changed"] else "nothing to change"
    lines.append(f"{report['directory']}: {summary}; {verdict} (generation {report['generation']})")
    return lines


def run(args: argparse.Namespace) -> int:
    name = f"drgwatch rules {args.rules_command}"
    path: Path = args.directory
    if not path.exists():
        print(f"{name}: {path}: no such file or directory", file=sys.stderr)
        return 2
    try:
        loaded = load_rule_files(path)
    except RuleFilesRefused as error:
        count = len(error.problems)
        print(f"{name}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([rule.model_dump(mode="json") for rule in loaded.rules], indent=2))
        return 0
    for line in describe(loaded, len(rule_files(path))):
        print(line)
    return 0


def describe(loaded: RuleSet, files: int) -> list[str]:
    """One line per rule: id, version, kind, severity, whether on, where, and its file."""
    rows = [
        [
            rule.id,
            rule.version,
            rule.kind,
            rule.severity,
            "on" if rule.enabled else "off",
            _scope(rule.hospitals, rule.departments, rule.exclude_departments),
            Path(loaded.sources.get(rule.id, "")).name,
        ]
        for rule in loaded.rules
    ]
    headers = ["id", "version", "kind", "severity", "enabled", "applies to", "file"]
    count = len(loaded.rules)
    enabled = sum(1 for rule in loaded.rules if rule.enabled)
    return [
        *table(headers, rows),
        f"{count} rule{'s' if count != 1 else ''} ({enabled} enabled) from "
        f"{files} file{'s' if files != 1 else ''}: valid",
    ]


def _scope(
    hospitals: tuple[str, ...], departments: tuple[str, ...], excluded: tuple[str, ...]
) -> str:
    where = ["hospitals " + ",".join(hospitals) if hospitals else "every hospital"]
    if departments:
        where.append("departments " + ",".join(departments))
    if excluded:
        where.append("not " + ",".join(excluded))
    return "; ".join(where)
