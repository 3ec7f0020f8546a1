"""`drgwatch drg` (catalogues) and `drgwatch thresholds`: reference data from the command
line, through the API of the target (services/cli/target.py)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from services.cli.output import Output, moment, table
from services.cli.target import Client, CommandError, add_target_options
from services.reference.service import CSV_COLUMNS, groups_from_csv

CATALOGUES = "/v1/drg-catalogues"
THRESHOLDS = "/v1/alert-thresholds"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_target_options(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")

    drg = commands.add_parser("drg", help="DRG catalogues: import, list, show, withdraw")
    actions = drg.add_subparsers(dest="drg_command", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import",
        parents=[common],
        help=f"import a catalogue CSV ({','.join(CSV_COLUMNS)})",
        description="Import a catalogue version. A CSV that lacks groups of the catalogue in"
        " force is refused unless it says --amend (add or replace only its groups) or"
        " --replace (withdraw the groups it leaves out).",
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--effective-from",
        type=iso_date,
        required=True,
        metavar="YYYY-MM-DD",
        help="the first admission day it prices (the hospital's local day)",
    )
    load.add_argument("--name", help="catalogue name (default: the file name)")
    load.add_argument(
        "--base-rate",
        action="append",
        default=[],
        metavar="SCHEME=YUAN",
        help="base rate per weight unit for an insurance scheme, e.g. employee=12252.70"
        " (repeatable; with --amend only those that change)",
    )
    load.add_argument("--hospital-id", help="a catalogue for this hospital only")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument(
        "--amend",
        dest="mode",
        action="store_const",
        const="amend",
        help="add or replace these groups in the catalogue in force; keep the rest",
    )
    mode.add_argument(
        "--replace",
        dest="mode",
        action="store_const",
        const="replace",
        help="these groups only: withdraw those of the catalogue in force it leaves out",
    )
    load.add_argument(
        "--dry-run", action="store_true", help="report what it would do, store nothing"
    )

    listing = actions.add_parser("list", parents=[common], help="catalogue versions, newest first")
    listing.add_argument("--hospital-id", help="those that apply to this hospital")

    show = actions.add_parser("show", parents=[common], help="a catalogue and its groups")
    show.add_argument("catalogue", help="catalogue id, or 'current' (in force today)")
    show.add_argument("--hospital-id", help="with 'current': the one for this hospital")

    withdraw = actions.add_parser(
        "withdraw",
        parents=[common],
        help="take a catalogue out of force (kept as history); open cases are priced again",
    )
    withdraw.add_argument("catalogue", type=int, metavar="ID")
    withdraw.add_argument("--reason", help="why, kept with the catalogue")
    withdraw.add_argument(
        "--dry-run", action="store_true", help="report what it would do, change nothing"
    )

    thresholds = commands.add_parser(
        "thresholds", help="alert thresholds per hospital and DRG: list, set, remove"
    )
    actions = thresholds.add_subparsers(dest="thresholds_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="thresholds set, and the default")
    listing.add_argument("--hospital-id")
    listing.add_argument("--drg-code")
    put = actions.add_parser(
        "set", parents=[common], help="set the fractions of the standard for each level"
    )
    put.add_argument("--hospital-id", default="*", help="default '*': every hospital")
    put.add_argument("--drg-code", default="*", help="default '*': every DRG")
    for level, example in (("blue", "0.90"), ("yellow", "0.95"), ("red", "1.00")):
        put.add_argument(f"--{level}", required=True, metavar="FRACTION", help=f"e.g. {example}")
    remove = actions.add_parser(
        "remove", parents=[common], help="remove thresholds: the next most specific apply"
    )
    remove.add_argument("--hospital-id", required=True, help="'*' for the every-hospital row")
    remove.add_argument("--drg-code", required=True, help="'*' for the every-DRG row")


def iso_date(text: str) -> date:
    """A date argument (YYYY-MM-DD); argparse names the argument and the text it refuses."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


async def run_drg(args: argparse.Namespace, client: Client, out: Output) -> None:
    if args.drg_command == "import":
        await _import(args, client, out)
    elif args.drg_command == "list":
        await _list(args, client, out)
    elif args.drg_command == "show":
        await _show(args, client, out)
    else:
        await _withdraw(args, client, out)


async def run_thresholds(args: argparse.Namespace, client: Client, out: Output) -> None:
    if args.thresholds_command == "list":
        params = {"hospital_id": args.hospital_id, "drg_code": args.drg_code}
        listed = await _all_pages(client, THRESHOLDS, params)
        if out.json(listed):
            return
        rows = [
            [
                t["hospital_id"],
                t["drg_code"],
                t["blue"],
                t["yellow"],
                t["red"],
                moment(t["updated_at"]),
            ]
            for t in listed["items"]
        ]
        out.lines(table(["hospital", "drg", "blue", "yellow", "red", "updated"], rows))
        default = listed["default"]
        out.line(
            f"where none applies: blue {default['blue']}, yellow {default['yellow']},"
            f" red {default['red']} (most specific first: hospital+DRG, DRG, hospital, '*')"
        )
    elif args.thresholds_command == "set":
        body = {
            "hospital_id": args.hospital_id,
            "drg_code": args.drg_code,
            "blue": args.blue,
            "yellow": args.yellow,
            "red": args.red,
        }
        stored = await client.request("PUT", THRESHOLDS, json=body)
        if not out.json(stored):
            out.line(f"set {_thresholds(stored)}; open cases are re-levelled")
    else:
        params = {"hospital_id": args.hospital_id, "drg_code": args.drg_code}
        removed = await client.request("DELETE", THRESHOLDS, params=params)
        if not out.json(removed):
            out.line(f"removed {_thresholds(removed)}; open cases are re-levelled")


def _thresholds(row: dict[str, Any]) -> str:
    return (
        f"thresholds of hospital {row['hospital_id']}, DRG {row['drg_code']}:"
        f" blue {row['blue']}, yellow {row['yellow']}, red {row['red']}"
    )


async def _import(args: argparse.Namespace, client: Client, out: Output) -> None:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror or error}") from None
    try:
        groups = groups_from_csv(text)
    except ValueError as error:
        raise CommandError(f"{args.file}: {error}") from None
    rates: dict[str, str] = {}
    for item in args.base_rate:
        scheme, sep, amount = item.partition("=")
        if not sep or not scheme.strip() or not amount.strip():
            raise CommandError(f"--base-rate {item}: expected SCHEME=YUAN, e.g. employee=12252.70")
        rates[scheme.strip()] = amount.strip()
    body: dict[str, Any] = {
        "name": args.name or args.file.stem,
        "effective_from": args.effective_from.isoformat(),
        "mode": args.mode or "full",
        "base_rates": rates,
        "groups": [group.model_dump(mode="json", exclude_none=True) for group in groups],
        "dry_run": args.dry_run,
    }
    if args.hospital_id:
        body["hospital_id"] = args.hospital_id
    report = await client.request("POST", CATALOGUES, json=body)
    if out.json(report):
        return
    changes = report["changes"]
    what = (
        f"catalogue {report['catalogue_id']} {report['name']!r}"
        if report["catalogue_id"] is not None
        else f"catalogue {report['name']!r}"
    )
    verb = "dry run, nothing stored: would import" if report["dry_run"] else "imported"
    out.line(
        f"{verb} {what} from {report['effective_from']} for {_scope(report['hospital_id'])}"
        f" ({report['mode']}, {report['group_count']} groups: {changes['added']} added,"
        f" {changes['changed']} changed, {changes['unchanged']} unchanged,"
        f" {changes['withdrawn']} withdrawn)"
    )
    if report["based_on"] is not None:
        out.line(f"  supersedes {_ref(report['based_on'])}")
    _today_and_impact(report, out)


async def _list(args: argparse.Namespace, client: Client, out: Output) -> None:
    listed = await _all_pages(client, CATALOGUES, {"hospital_id": args.hospital_id})
    if out.json(listed):
        return
    rows = [
        [
            c["catalogue_id"],
            c["effective_from"],
            c["hospital_id"] or "*",
            c["group_count"],
            _flags(c),
            c["name"],
        ]
        for c in listed["items"]
    ]
    out.lines(table(["id", "from", "hospital", "groups", "status", "name"], rows))
    out.line(f"today is {listed['today']} (the hospital's local day)")


async def _show(args: argparse.Namespace, client: Client, out: Output) -> None:
    if args.catalogue == "current":
        path, params = f"{CATALOGUES}/current", {"hospital_id": args.hospital_id}
    elif args.catalogue.isdigit():
        path, params = f"{CATALOGUES}/{int(args.catalogue)}", {}
    else:
        raise CommandError(f"{args.catalogue!r}: a catalogue id or 'current'", exit_code=2)
    first = await client.request("GET", path, params=_given(params))
    groups = list(first["groups"]["items"])
    cursor = first["groups"]["next_cursor"]
    while cursor:
        page = await client.request("GET", path, params=_given({**params, "cursor": cursor}))
        groups += page["groups"]["items"]
        cursor = page["groups"]["next_cursor"]
    first["groups"] = {"items": groups, "next_cursor": None}
    if out.json(first):
        return
    out.line(f"catalogue {first['catalogue_id']} {first['name']!r}")
    out.line(
        f"  from {first['effective_from']} for {_scope(first['hospital_id'])}: {_flags(first)}"
    )
    rates = ", ".join(f"{scheme} {rate}" for scheme, rate in first["base_rates"].items())
    out.line(f"  base rates (yuan per weight unit): {rates or 'none'}")
    out.line(
        f"  imported {moment(first['created_at'])} by {first['created_by'] or 'unknown'}"
        f" ({first['import_mode'] or 'full'}"
        + (f", based on catalogue {first['based_on_id']})" if first["based_on_id"] else ")")
    )
    if first["withdrawn"]:
        out.line(
            f"  withdrawn {moment(first['withdrawn_at'])} by {first['withdrawn_by']}:"
            f" {first['withdrawn_reason'] or 'no reason given'}"
        )
    schemes = list(first["base_rates"])
    rows = [
        [
            g["drg_code"],
            g["weight"],
            g["avg_los_days"] or "",
            g["standard_cost"] or "",
            *(g["standard_costs"].get(scheme, "") for scheme in schemes),
            g["name"],
        ]
        for g in groups
    ]
    headers = ["drg", "weight", "avg_los", "explicit", *schemes, "name"]
    out.lines(table(headers, rows))


async def _withdraw(args: argparse.Namespace, client: Client, out: Output) -> None:
    body: dict[str, Any] = {"dry_run": args.dry_run}
    if args.reason:
        body["reason"] = args.reason
    report = await client.request("POST", f"{CATALOGUES}/{args.catalogue}/withdraw", json=body)
    if out.json(report):
        return
    catalogue = report["catalogue"]
    verb = "dry run, nothing changed: would withdraw" if report["dry_run"] else "withdrew"
    out.line(
        f"{verb} catalogue {catalogue['catalogue_id']} {catalogue['name']!r}"
        f" (from {catalogue['effective_from']}, for {_scope(catalogue['hospital_id'])})"
    )
    _today_and_impact(report, out)


def _today_and_impact(report: dict[str, Any], out: Output) -> None:
    today, in_force = report["today"], report["in_force_today"]
    if in_force is None:
        out.line(f"  no catalogue prices cases admitted today ({today}): they stay unpriced")
    else:
        out.line(f"  cases admitted today ({today}) are priced by {_ref(in_force)}")
        if in_force["sample"]:
            out.warn(
                "the SAMPLE catalogue prices today's admissions: it is illustrative, not for"
                " payment; import your region's catalogue"
            )
    impact = report["impact"]
    out.line(
        f"  open cases: {impact['open_cases']}; priced again {impact['repriced']}"
        f" ({impact['standard_changed']} at another standard);"
        f" unpriced {impact['unpriced']} ({impact['newly_unpriced']} priced until now)"
    )
    if impact["newly_unpriced"]:
        out.warn(
            f"{impact['newly_unpriced']} open cases lose their standard: no alert fires for"
            " them until they are priced again"
        )


def _ref(ref: dict[str, Any]) -> str:
    ident = (
        "the imported catalogue"
        if ref["catalogue_id"] is None
        else f"catalogue {ref['catalogue_id']}"
    )
    sample = " [SAMPLE]" if ref["sample"] else ""
    return f"{ident} {ref['name']!r} (from {ref['effective_from']}){sample}"


def _flags(catalogue: dict[str, Any]) -> str:
    flags = []
    if catalogue["in_force_today"]:
        flags.append("in force today")
    if catalogue["sample"]:
        flags.append("SAMPLE")
    if catalogue["withdrawn"]:
        flags.append(f"withdrawn {catalogue['withdrawn_at'][:10]}")
    return ", ".join(flags) or "-"


def _scope(hospital_id: str | None) -> str:
    return f"hospital {hospital_id}" if hospital_id else "every hospital"


def _given(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


async def _all_pages(client: Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every item of a list, following its cursors; the first page's other fields."""
    first: dict[str, Any] = await client.request("GET", path, params=_given(params))
    items, cursor = list(first["items"]), first["next_cursor"]
    while cursor:
        page = await client.request("GET", path, params=_given({**params, "cursor": cursor}))
        items += page["items"]
        cursor = page["next_cursor"]
    return {**first, "items": items, "next_cursor": None}
