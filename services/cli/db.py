"""`drgwatch db`: the revision of the database's schema (services/storage/schema.py).

    drgwatch db upgrade [REVISION]    to REVISION (default: the code's head); creates the
                                      database, adopts one made before migrations
    drgwatch db current               the database's revision, the code's head, and
                                      whether the database is behind
    drgwatch db downgrade [REVISION]  to REVISION (default: one step back)
    drgwatch db init [--sample]       upgrade, then the sample catalogue into a database
                                      that has none

Each takes --data-dir (the embedded SQLite file drgwatch.db in it, default ./var) or
--database-url (default DRGWATCH_DATABASE_URL). Exit status: 0 done; 1 the database
could not be reached or the change was refused; 2 no database there, or a bad argument.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from services.cli import target as targets
from services.settings import CommonSettings
from services.storage import schema
from services.storage.engine import is_unavailable
from services.storage.exceptions import MissingDatabase, SchemaError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="database schema: upgrade, current revision, downgrade")
    where = argparse.ArgumentParser(add_help=False)
    targets.add_target_options(where)
    actions = db.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser(
        "upgrade", parents=[where], help="upgrade the schema (creates the database if needed)"
    )
    upgrade.add_argument("revision", nargs="?", default="head", help="default: head")
    actions.add_parser(
        "current", parents=[where], help="the database's revision and the code's head"
    )
    downgrade = actions.add_parser("downgrade", parents=[where], help="take the schema back")
    downgrade.add_argument(
        "revision", nargs="?", default=None, help="default: one step back ('base': no tables)"
    )
    init = actions.add_parser(
        "init", parents=[where], help="upgrade, and with --sample load the sample reference data"
    )
    init.add_argument(
        "--sample",
        action="store_true",
        help="load the sample DRG catalogue and chargemaster where there is none",
    )


def run(args: argparse.Namespace) -> int:
    name = f"drgwatch db {args.db_command}"
    # what the schema module logs for a service's log is printed here instead
    logging.getLogger(schema.__name__).setLevel(logging.WARNING)
    try:
        settings = _settings(args)
    except ValidationError as error:
        return _fail(name, str(error.errors()[0]["msg"]).removeprefix("Value error, "), 2)
    except targets.CommandError as error:
        return _fail(name, error.message, error.exit_code)
    try:
        lines = _run_alone(_act(args, settings))
    except MissingDatabase as error:
        return _fail(name, error.message, 2)
    except SchemaError as error:
        return _fail(name, error.message, 1)
    except CommandError as error:  # Alembic's: a revision it cannot find or reach
        return _fail(name, str(error), 2)
    except (SQLAlchemyError, OSError) as error:
        shown = schema.display(settings.resolved_database_url)
        if is_unavailable(error):
            return _fail(name, f"cannot reach the database {shown}: {_reason(error)}", 1)
        return _fail(name, f"the database {shown} refused: {_reason(error)}", 1)
    for line in lines:
        print(line)
    return 0


def _settings(args: argparse.Namespace) -> CommonSettings:
    """The database the same target options as every data command name (no --url: the
    schema is changed on the database itself, never through a service)."""
    target = targets.resolve(args, targets.CommandSettings())
    if target.url is not None:
        raise targets.CommandError(
            "the schema is changed on the database itself: give --data-dir or --database-url",
            exit_code=2,
        )
    return CommonSettings(database_url=target.database_url or "")


def start_refusal(settings: CommonSettings) -> str | None:
    """Why an API or worker process must not start on its database (None: it may).

    Checked before the process starts so that a refusal is one line, not a traceback
    from uvicorn or Faust; the process's own start-up applies the same rule again. A
    database that cannot be reached is no refusal here: the process handles that.
    """
    try:
        _run_alone(schema.check(settings.resolved_database_url, mode=settings.mode))
    except (MissingDatabase, SchemaError) as error:
        return error.message
    except (SQLAlchemyError, OSError):
        return None
    return None


async def _act(args: argparse.Namespace, settings: CommonSettings) -> list[str]:
    url = settings.resolved_database_url
    if args.db_command == "current":
        return _status_lines(await schema.status(url), _where(args))
    if args.db_command == "downgrade":
        change = await schema.downgrade(url, args.revision)
        return [
            f"downgraded {change.database} from {change.before} to"
            f" {change.after or 'base (no drgwatch tables)'}"
        ]
    change = await schema.upgrade(url, getattr(args, "revision", "head"))
    lines = _upgrade_lines(change)
    if args.db_command == "init":
        if args.sample:
            from services.stack import prepare_database

            await prepare_database(settings, replay_ledger=False, load_sample=True)
            lines.append(
                "the sample DRG catalogue and chargemaster are in place (each loaded if there"
                " was none)"
            )
        lines.append("database ready")
    return lines


def _upgrade_lines(change: schema.Change) -> list[str]:
    lines = []
    if change.adopted:
        lines.append(
            f"{change.database} was made before migrations; its tables match"
            f" {change.adopted}, which is now recorded"
        )
    if change.before == change.after:
        lines.append(f"{change.database} is at {change.after}: nothing to upgrade")
    else:
        lines.append(
            f"upgraded {change.database} from {change.before or 'an empty database'}"
            f" to {change.after}"
        )
    return lines


def _status_lines(found: schema.Status, where: str) -> list[str]:
    if found.ahead:
        revision = f"{found.revision} (unknown to this drgwatch)"
        verdict = (
            "ahead: a newer drgwatch has upgraded this database; run that version, or"
            f" go back with it: drgwatch db downgrade {found.head}{where}"
        )
    elif found.empty:
        revision = "none (no drgwatch tables)"
        verdict = f"behind: `drgwatch db upgrade{where}` creates the schema"
    elif found.revision is None:
        revision = (
            "none recorded (made before migrations; its tables match"
            f" {found.made_before_migrations})"
        )
        verdict = f"behind: `drgwatch db upgrade{where}` records that and upgrades it"
    else:
        revision = found.revision
        verdict = (
            f"behind: `drgwatch db upgrade{where}` brings it to {found.head}"
            if found.behind
            else "up to date"
        )
    return [
        f"database   {found.database}",
        f"revision   {revision}",
        f"code head  {found.head}",
        verdict,
    ]


def _where(args: argparse.Namespace) -> str:
    """The options that named the database, to repeat in a suggested command."""
    if args.database_url:
        return f" --database-url '{schema.display(args.database_url)}'"
    if args.data_dir:
        return f" --data-dir {args.data_dir}"
    return ""


def _run_alone(work: Coroutine[Any, Any, Any]) -> Any:
    """Run `work` on an event loop of its own, leaving none behind: asyncio.run would
    unset the current loop that Faust's worker, started next, asks for."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _reason(error: BaseException) -> str:
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def _fail(name: str, message: str, code: int) -> int:
    print(f"{name}: {message}", file=sys.stderr)
    return code
