"""`drgwatch rules validate [DIR]`: check monitoring rule files before they are loaded.

Reads DIR (default: the rules drgwatch ships, services/reference/rules/) as the service
will (services/reference/rules.py) and prints the rules it found, one line each, or every
problem (file:line: rule: field: reason) on stderr. Exit status: 0 valid; 2 problems.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.casecost.rules import RuleSet
from services.cli.output import table
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
