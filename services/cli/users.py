"""`drgwatch users`: create identities and keys, list them, issue another key, set a
person's sign-in password, disable.

Through the identities API of the target (services/cli/target.py): a database directly,
or a running service with an admin's key. A password is asked for twice on the terminal
(never echoed, never an argument: arguments show in the process list and the shell's
history); when stdin is not a terminal, its first line is the password, for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from services.access.principal import ROLES
from services.cli.output import Output, table
from services.cli.target import Client, CommandError, add_target_options

IDENTITIES = "/v1/identities"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="identities, roles and API keys")
    common = argparse.ArgumentParser(add_help=False)
    add_target_options(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", parents=[common], help="a new identity; prints its API key once"
    )
    create.add_argument("name", help="who this is, e.g. 'Dr Li, cardiology' or 'HIS H1'")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--hospital", action="append", default=[], help="hospital id (repeatable; '*' = every)"
    )
    create.add_argument(
        "--department", action="append", default=[], help="department (department heads)"
    )
    create.add_argument(
        "--password",
        action="store_true",
        help="a person who signs in: asks for a password (twice; from stdin if not a terminal)",
    )
    actions.add_parser(
        "list", parents=[common], help="identities with their role, scope and live keys"
    )
    key = actions.add_parser(
        "key", parents=[common], help="issue another API key (rotation); printed once"
    )
    key.add_argument("name", help="identity name or id")
    password = actions.add_parser(
        "password",
        parents=[common],
        help="set or change a sign-in password (asked twice; ends the identity's sessions)",
    )
    password.add_argument("name", help="identity name or id")
    disable = actions.add_parser(
        "disable", parents=[common], help="disable an identity and revoke its keys"
    )
    disable.add_argument("name", help="identity name or id")


async def run(args: argparse.Namespace, client: Client, out: Output) -> None:
    if args.users_command == "create":
        body = {
            "name": args.name,
            "role": args.role,
            "hospitals": args.hospital,
            "departments": args.department,
        }
        if args.password:
            body["password"] = read_password()
        created = await client.request("POST", IDENTITIES, json=body)
        if not out.json(created):
            identity = created["identity"]
            out.line(f"created {identity['id']} {identity['name']!r} ({identity['role']})")
            out.line(f"API key (shown once, keep it secret): {created['api_key']}")
    elif args.users_command == "key":
        identity = await _find(client, args.name)
        issued = await client.request("POST", f"{IDENTITIES}/{identity['id']}/keys")
        if not out.json(issued):
            out.line(
                f"API key for {identity['name']!r} (shown once, keep it secret):"
                f" {issued['api_key']}"
            )
    elif args.users_command == "password":
        identity = await _find(client, args.name)
        changed = await client.request(
            "PUT", f"{IDENTITIES}/{identity['id']}/password", json={"password": read_password()}
        )
        if not out.json(changed):
            out.line(f"password set for {changed['name']!r}; its sessions are ended")
    elif args.users_command == "disable":
        identity = await _find(client, args.name)
        disabled = await client.request("POST", f"{IDENTITIES}/{identity['id']}/disable")
        if not out.json(disabled):
            out.line(
                f"disabled {disabled['id']} {disabled['name']!r};"
                " its keys are revoked and its sessions ended"
            )
    else:
        listed = await client.request("GET", IDENTITIES)
        if out.json(listed):
            return
        rows = [
            [
                i["id"],
                i["role"],
                ",".join(i["hospitals"]),
                ",".join(i["departments"]),
                "disabled" if i["disabled_at"] else i["live_keys"],
                "yes" if i["password_set"] else "no",
                i["name"],
            ]
            for i in listed["items"]
        ]
        columns = ["id", "role", "hospitals", "departments", "keys", "password", "name"]
        out.lines(table(columns, rows))


def read_password() -> str:
    """A new password: typed twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("password (12 characters or more): ")
        if getpass.getpass("the same again: ") != first:
            raise CommandError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password: stdin is empty (type it on a terminal, or pipe it)")
    return line.removesuffix("\n").removesuffix("\r")


async def _find(client: Client, name_or_id: str) -> dict[str, Any]:
    listed = await client.request("GET", IDENTITIES)
    for identity in listed["items"]:
        if name_or_id in (identity["id"], identity["name"]):
            found: dict[str, Any] = identity
            return found
    raise CommandError(f"no identity named {name_or_id!r} (drgwatch users list shows them)")
