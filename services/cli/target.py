"""Where a data command acts: a drgwatch database directly, or a running drgwatch service.

Every command that touches data (`drgwatch drg`, `thresholds`, `users`) takes the same
options and reaches its data through here:

- `--data-dir DIR`: the embedded SQLite database in DIR (as `drgwatch up --data-dir`);
- `--database-url URL`: a database, e.g. postgresql+asyncpg://user@host/drgwatch;
- `--url URL` with `--api-key KEY` (or DRGWATCH_API_KEY): a running service.

With none of them, the database the service itself would use (DRGWATCH_DATABASE_URL,
else DRGWATCH_DATA_DIR, else ./var). Both ways go through the same HTTP API: a database
is reached through the app itself, run inside the command as the local admin (whoever
can write the database can do anything with it), so a command gets the same checks,
reports and answers whichever way it goes. A database that is not there is never
created: that is `drgwatch up` or `drgwatch db upgrade`.

What goes wrong is a CommandError: one line for the user, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import model_validator
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from services.settings import CommonSettings
from services.storage.engine import make_engine

DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}
# the app run inside a command answers requests that never leave the process
IN_PROCESS = "http://drgwatch.local"
TIMEOUT_SECONDS = 120.0


class CommandError(Exception):
    """A command cannot do what was asked; `message` is the one line the user sees."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class CommandSettings(CommonSettings):
    """The command line's own settings: the common ones and the key for `--url`."""

    api_key: str = ""  # DRGWATCH_API_KEY

    @model_validator(mode="after")
    def _production_needs_a_database(self) -> CommandSettings:
        # unlike a service, a command may talk to a service (--url) and need no database;
        # when it needs one, resolve() says which
        return self


def add_target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "where the data is",
        "a database (default: DRGWATCH_DATABASE_URL, else ./var) or a running service",
    )
    where.add_argument("--data-dir", type=Path, help="embedded data directory (drgwatch up's)")
    where.add_argument("--database-url", help="e.g. postgresql+asyncpg://user@host/drgwatch")
    where.add_argument("--url", help="a running drgwatch service, e.g. http://127.0.0.1:8000")
    where.add_argument("--api-key", help="the key for --url (default: DRGWATCH_API_KEY)")


@dataclass(frozen=True)
class Target:
    """A database (`database_url`) or a service (`url` and its key)."""

    database_url: str | None = None
    data_dir: Path | None = None
    url: str | None = None
    api_key: str | None = None

    @property
    def description(self) -> str:
        if self.url is not None:
            return f"drgwatch at {self.url}"
        return f"the database {_shown(self.database_url or '')}"


def resolve(args: argparse.Namespace, settings: CommandSettings) -> Target:
    """The target the options name, or CommandError (exit 2) when they contradict."""
    if args.url and (args.data_dir or args.database_url):
        raise CommandError(
            "--url names a running service, --data-dir and --database-url a database:"
            " give one or the other",
            exit_code=2,
        )
    if args.data_dir and args.database_url:
        raise CommandError("give --data-dir or --database-url, not both", exit_code=2)
    if args.api_key and not args.url:
        raise CommandError(
            "--api-key goes with --url (a database is reached without a key)", exit_code=2
        )
    if args.url:
        url = str(args.url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url {args.url}: expected http://host:port", exit_code=2)
        return Target(url=url, api_key=args.api_key or settings.api_key or None)
    if args.database_url:
        return Target(database_url=_checked_url(args.database_url, "--database-url"))
    if args.data_dir:
        return Target(database_url=_sqlite_in(args.data_dir), data_dir=args.data_dir)
    if settings.database_url:
        return Target(database_url=_checked_url(settings.database_url, "DRGWATCH_DATABASE_URL"))
    return Target(database_url=_sqlite_in(settings.data_dir), data_dir=settings.data_dir)


def _sqlite_in(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'drgwatch.db').resolve()}"


def _checked_url(url: str, source: str) -> str:
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        raise CommandError(f"{source}: not a database URL", exit_code=2) from None
    if driver not in DRIVERS:
        raise CommandError(
            f"{source}: drgwatch talks to postgresql+asyncpg://... or"
            f" sqlite+aiosqlite:///..., not {driver}",
            exit_code=2,
        )
    return url


def _shown(url: str) -> str:
    """A database URL fit to print: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable URL)"


class Client:
    """Requests to the target's HTTP API; an answer other than 2xx is a CommandError."""

    def __init__(self, http: httpx.AsyncClient, target: Target) -> None:
        self._http = http
        self.target = target

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self._send(method, path, json=json, params=params)
        body = self._answer_object(response)
        if response.is_success:
            return body
        raise CommandError(self._refusal(response.status_code, body))

    async def text(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> str:
        """A successful answer's text, whatever its type (a CSV, a page, JSON)."""
        response = await self._send(method, path, params=params)
        if response.is_success:
            return response.text
        raise CommandError(self._refusal(response.status_code, self._answer_object(response)))

    async def _send(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            return await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise CommandError(self._unreachable(error)) from None

    def _answer_object(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object: every drgwatch answer but a successful text has one."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CommandError(
                f"{self.target.description} did not answer as drgwatch does"
                f" (HTTP {response.status_code} {response.headers.get('content-type', '')})"
            )
        return body

    def decoded(self, text: str) -> dict[str, Any]:
        """A JSON answer's object, or CommandError."""
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CommandError(f"{self.target.description} did not answer as drgwatch does")
        return body

    def _unreachable(self, error: httpx.TransportError) -> str:
        if isinstance(error, httpx.TimeoutException):
            reason = f"no answer within {TIMEOUT_SECONDS:.0f} s"
        elif isinstance(error, httpx.ConnectError) and "attempts failed" in str(error):
            reason = "nothing accepts connections there"
        else:
            reason = str(error) or type(error).__name__
        return (
            f"cannot reach {self.target.description} ({reason});"
            " is drgwatch (drgwatch up, or drgwatch api) running there?"
        )

    def _refusal(self, status: int, body: dict[str, Any]) -> str:
        detail = str(body.get("detail", "")) or f"HTTP {status}"
        errors = body.get("errors") or []
        if status == 401:
            if not self.target.api_key:
                return (
                    f"{self.target.description} needs an API key:"
                    " pass --api-key or set DRGWATCH_API_KEY"
                )
            return f"{self.target.description} refused the API key (401): {detail}"
        if status == 403:
            return f"{self.target.description} refused (403): {detail}"
        if status >= 500:
            return f"{self.target.description} answered {status}: {detail}; try again later"
        if errors and detail == "the request is invalid":
            return "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
        return detail


@contextlib.asynccontextmanager
async def connect(target: Target, settings: CommandSettings) -> AsyncIterator[Client]:
    """A client of the target: the service over HTTP, or the app on the database in here."""
    if target.url is not None:
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        async with httpx.AsyncClient(
            base_url=target.url, headers=headers, timeout=TIMEOUT_SECONDS
        ) as http:
            yield Client(http, target)
        return
    assert target.database_url is not None
    await _check_database(target)
    # imported here: every drgwatch command (the worker too) starts through this package
    from services.api.app import create_app
    from services.api.settings import ApiSettings

    app_settings = ApiSettings(
        **settings.model_dump(exclude={"api_key", "mode", "database_url", "data_dir"}),
        mode="embedded",
        database_url=target.database_url,
        webhooks=False,  # webhooks are the running service's to send
    )
    # the app would announce that requests without a key act as the local admin: true
    # here, and said in the module docstring, not on every command
    logging.getLogger("services.api.app").setLevel(logging.ERROR)
    # the rules are the command's to import (`drgwatch rules reload`), not the start's
    app = create_app(app_settings, connect_broker=False, import_rule_files=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url=IN_PROCESS, timeout=TIMEOUT_SECONDS
        ) as http:
            yield Client(http, target)


async def _check_database(target: Target) -> None:
    """The database is there and holds drgwatch's tables, or CommandError saying what to do."""
    url = target.database_url or ""
    parsed = make_url(url)
    create_it = "start the stack (drgwatch up) or create it (drgwatch db upgrade)"
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        if not path.exists():
            where = f"in {target.data_dir.resolve()}" if target.data_dir else f"at {path}"
            hint = f" --data-dir {target.data_dir}" if target.data_dir else ""
            raise CommandError(
                f"no drgwatch database {where}: start the stack there (drgwatch up{hint})"
                " or create it (drgwatch db upgrade)"
            )
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            has_tables = await connection.run_sync(
                lambda sync: inspect(sync).has_table("reference_version")
            )
    except (SQLAlchemyError, OSError) as error:
        raise CommandError(f"cannot use {target.description}: {_reason(error)}") from None
    finally:
        await engine.dispose()
    if not has_tables:
        raise CommandError(f"{target.description} holds no drgwatch tables: {create_it}")


def _reason(error: BaseException) -> str:
    """What the driver said, first line only (never the URL's password, never values)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__
