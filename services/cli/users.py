"""`drgwatch users`: create identities and keys, list them, issue another key, disable."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from services.access import service as access_service
from services.access.exceptions import InvalidIdentity
from services.access.principal import ROLES
from services.settings import CommonSettings
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.storage.exceptions import StorageError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="identities, roles and API keys")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--data-dir", help="embedded data directory (default ./var)")
    where.add_argument("--database-url", help="the database (default: DRGWATCH_DATABASE_URL)")
    actions = users.add_subparsers(dest="users_command", required=True)
    create = actions.add_parser(
        "create", parents=[where], help="a new identity; prints its API key once"
    )
    create.add_argument("name", help="who this is, e.g. 'Dr Li, cardiology' or 'HIS H1'")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--hospital", action="append", default=[], help="hospital id (repeatable; '*' = every)"
    )
    create.add_argument(
        "--department", action="append", default=[], help="department (department heads)"
    )
    actions.add_parser(
        "list", parents=[where], help="identities with their role, scope and live keys"
    )
    key = actions.add_parser(
        "key", parents=[where], help="issue another API key (rotation); printed once"
    )
    key.add_argument("name", help="identity name or id")
    disable = actions.add_parser(
        "disable", parents=[where], help="disable an identity and revoke its keys"
    )
    disable.add_argument("name", help="identity name or id")


def settings_for(args: argparse.Namespace) -> CommonSettings:
    overrides: dict[str, str] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.database_url:
        overrides["database_url"] = args.database_url
    return CommonSettings(**overrides)  # type: ignore[arg-type]


async def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        try:
            await schema.prepare(engine, mode=settings.mode)
        except StorageError as error:  # a schema this process may not use (production)
            print(f"drgwatch users: {error.message}", file=sys.stderr)
            return 1
        async with session_factory(engine)() as db_session:
            try:
                lines = await _act(args, db_session)
            except InvalidIdentity as error:
                print(f"error: {error.message}")
                return 1
            await db_session.commit()
    finally:
        await engine.dispose()
    for line in lines:
        print(line)
    return 0


async def _act(args: argparse.Namespace, db_session: AsyncSession) -> list[str]:
    if args.users_command == "create":
        identity, key = await access_service.create_identity(
            db_session=db_session,
            name=args.name,
            role=args.role,
            hospitals=args.hospital,
            departments=args.department,
        )
        return [
            f"created {identity.id} {identity.name!r} ({identity.role})",
            f"API key (shown once, keep it secret): {key}",
        ]
    if args.users_command == "key":
        identity = await access_service.find(db_session=db_session, name_or_id=args.name)
        key = await access_service.issue_key(db_session=db_session, identity_id=identity.id)
        return [f"API key for {identity.name!r} (shown once, keep it secret): {key}"]
    if args.users_command == "disable":
        identity = await access_service.disable(db_session=db_session, name_or_id=args.name)
        return [f"disabled {identity.id} {identity.name!r}; its keys are revoked"]
    rows = await access_service.list_identities(db_session=db_session)
    lines = [f"{'id':<21}  {'role':<16}  {'hospitals':<16}  {'departments':<20}  keys  name"]
    for identity, live_keys in rows:
        state = "disabled" if identity.disabled_at else str(live_keys)
        lines.append(
            f"{identity.id:<21}  {identity.role:<16}  {','.join(identity.hospitals):<16}  "
            f"{','.join(identity.departments):<20}  {state:<4}  {identity.name}"
        )
    return lines
