"""`drgwatch chargemaster`: import a chargemaster CSV, list versions, show an item, through
the API of the target (services/cli/target.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.cli.output import Output, moment, table
from services.cli.reference import iso_date
from services.cli.target import Client, CommandError, add_target_options
from services.reference.chargemaster.service import CSV_COLUMNS, items_from_csv
from services.reference.exceptions import ChargemasterRefused

CHARGEMASTERS = "/v1/chargemasters"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_target_options(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")

    chargemaster = commands.add_parser(
        "chargemaster", help="the chargemaster (price list of items): import, list, item"
    )
    actions = chargemaster.add_subparsers(
        dest="chargemaster_command", required=True, metavar="ACTION"
    )
    load = actions.add_parser(
        "import",
        parents=[common],
        help=f"import a chargemaster CSV ({','.join(CSV_COLUMNS)})",
        description="Import a chargemaster version. Every row is checked first; one bad row"
        " refuses the whole file, and each problem is named by line and column.",
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--valid-from",
        type=iso_date,
        required=True,
        metavar="YYYY-MM-DD",
        help="the first day it prices (the hospital's local day)",
    )
    load.add_argument("--name", help="chargemaster name (default: the file name)")
    load.add_argument("--hospital-id", help="a chargemaster for this hospital only")

    listing = actions.add_parser("list", parents=[common], help="versions, newest first")
    listing.add_argument("--hospital-id", help="those that apply to this hospital")

    item = actions.add_parser(
        "item", parents=[common], help="an item valid today, with its cheaper equivalents"
    )
    item.add_argument("item_code")
    item.add_argument("--hospital-id", help="the chargemaster valid for this hospital")
    item.add_argument("--on", type=iso_date, metavar="YYYY-MM-DD", help="valid on this day")


async def run(args: argparse.Namespace, client: Client, out: Output) -> None:
    if args.chargemaster_command == "import":
        await _import(args, client, out)
    elif args.chargemaster_command == "list":
        await _list(args, client, out)
    else:
        await _item(args, client, out)


def read_items(path: Path) -> list[dict[str, Any]]:
    """The file's items as the API takes them; CommandError naming every bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text") from None
    try:
        items = items_from_csv(text)
    except ChargemasterRefused as refused:
        problems = "\n".join(f"  {e.field}: {e.reason}" for e in refused.errors)
        raise CommandError(f"{path}: refused, nothing imported:\n{problems}") from None
    return [item.model_dump(mode="json", exclude_none=True) for item in items]


async def _import(args: argparse.Namespace, client: Client, out: Output) -> None:
    body: dict[str, Any] = {
        "name": args.name or args.file.stem,
        "valid_from": args.valid_from.isoformat(),
        "items": read_items(args.file),
    }
    if args.hospital_id:
        body["hospital_id"] = args.hospital_id
    report = await client.request("POST", CHARGEMASTERS, json=body)
    if out.json(report):
        return
    stored = report["chargemaster"]
    out.line(
        f"imported chargemaster {stored['chargemaster_id']} {stored['name']!r} valid from"
        f" {stored['valid_from']} for {_scope(stored['hospital_id'])}"
        f" ({stored['item_count']} items; equivalence groups: {report['equivalence_groups']})"
    )
    valid = report["valid_today"]
    if valid is None:
        out.line(f"  no chargemaster is valid today ({report['today']}) for its scope")
    else:
        out.line(f"  today ({report['today']}) pre-checks are priced by {_ref(valid)}")


async def _list(args: argparse.Namespace, client: Client, out: Output) -> None:
    params = {"hospital_id": args.hospital_id} if args.hospital_id else {}
    first: dict[str, Any] = await client.request("GET", CHARGEMASTERS, params=params)
    items, cursor = list(first["items"]), first["next_cursor"]
    while cursor:
        page = await client.request("GET", CHARGEMASTERS, params={**params, "cursor": cursor})
        items += page["items"]
        cursor = page["next_cursor"]
    listed = {**first, "items": items, "next_cursor": None}
    if out.json(listed):
        return
    rows = [
        [
            c["chargemaster_id"],
            c["valid_from"],
            c["hospital_id"] or "*",
            c["item_count"],
            _flags(c),
            moment(c["created_at"]),
            c["name"],
        ]
        for c in items
    ]
    out.lines(table(["id", "from", "hospital", "items", "status", "imported", "name"], rows))
    out.line(f"today is {listed['today']} (the hospital's local day)")


async def _item(args: argparse.Namespace, client: Client, out: Output) -> None:
    params = {
        name: value
        for name, value in (
            ("hospital_id", args.hospital_id),
            ("on", None if args.on is None else args.on.isoformat()),
        )
        if value is not None
    }
    item = await client.request(
        "GET", f"{CHARGEMASTERS}/current/items/{args.item_code}", params=params
    )
    if out.json(item):
        return
    unit = f" per {item['unit']}" if item["unit"] else ""
    out.line(f"{item['item_code']} {item['name']} ({item['category']}): {item['unit_price']}{unit}")
    out.line(f"  in {_ref(item['chargemaster'])}, on {item['on']}")
    if item["equivalence_group"]:
        out.line(f"  equivalence group {item['equivalence_group']}:")
        rows = [
            [other["item_code"], other["unit_price"], other["name"]]
            for other in item["equivalents"]
        ]
        out.lines(table(["code", "unit price", "name"], rows))


def _ref(ref: dict[str, Any]) -> str:
    sample = " [SAMPLE]" if ref["sample"] else ""
    return (
        f"chargemaster {ref['chargemaster_id']} {ref['name']!r} (from {ref['valid_from']}){sample}"
    )


def _flags(chargemaster: dict[str, Any]) -> str:
    flags = []
    if chargemaster["valid_today"]:
        flags.append("valid today")
    if chargemaster["sample"]:
        flags.append("SAMPLE")
    return ", ".join(flags) or "-"


def _scope(hospital_id: str | None) -> str:
    return f"hospital {hospital_id}" if hospital_id else "every hospital"
