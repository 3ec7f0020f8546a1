"""The `drgwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError

from services import logs
from services.cli import briefing as briefing_command
from services.cli import chargemaster as chargemaster_commands
from services.cli import db as db_commands
from services.cli import feed as feed_command
from services.cli import reference as reference_commands
from services.cli import rules as rule_commands
from services.cli import users as user_commands
from services.cli.output import Output
from services.cli.target import Client, CommandError, CommandSettings, connect, resolve
from services.settings import CommonSettings
from services.validation import field_errors, summary

log = logging.getLogger("drgwatch")
DATA_COMMANDS: dict[str, Callable[[argparse.Namespace, Client, Output], Awaitable[None]]] = {
    "drg": reference_commands.run_drg,
    "thresholds": reference_commands.run_thresholds,
    "users": user_commands.run,
    "briefing": briefing_command.run,
    "rules": rule_commands.run_reload,
    "chargemaster": chargemaster_commands.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drgwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the whole embedded stack (Ctrl-C stops it)")
    up.add_argument(
        "--port", type=int, default=8000, help="HTTP origin port (default 8000; 0: any free port)"
    )
    up.add_argument(
        "--broker-port", type=int, default=9092, help="Kafka port (default 9092; 0: any free port)"
    )
    up.add_argument(
        "--mllp-port",
        type=int,
        default=2575,
        help="HL7 v2 MLLP port, on loopback (default 2575; 0: any free port)",
    )
    up.add_argument("--data-dir", type=Path, default=Path("./var"), help="default ./var")
    up.add_argument("--partitions", type=int, default=8, help="event topic partitions")
    up.add_argument("--demo", action="store_true", help="also run the simulated hospital")
    up.add_argument(
        "--resume", action="store_true", help="with --demo: continue the last demo run's stays"
    )

    api = commands.add_parser("api", help="serve ingest and query HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket instead of --host/--port"
    )
    api.add_argument(
        "--mllp-port",
        type=int,
        help="also take HL7 v2 over MLLP on this port (default DRGWATCH_MLLP_PORT, unset: none)",
    )
    api.add_argument(
        "--mllp-fd", type=int, help="take HL7 v2 over MLLP on this inherited listening socket"
    )

    commands.add_parser("worker", help="run the Faust worker")

    intake = commands.add_parser(
        "intake", help="take contract v1 events from the Kafka intake topic (README: Kafka intake)"
    )
    intake.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (default DRGWATCH_INTAKE_METRICS_PORT)",
    )
    feed_command.add_parser(commands)

    db_commands.add_parser(commands)

    topics = commands.add_parser(
        "topics",
        help="Kafka topics: create the missing ones, check the others (exit 1 when one differs)",
    )
    topics.add_argument(
        "action", choices=["ensure", "create"], help="`create` is another name for `ensure`"
    )

    restore = commands.add_parser(
        "restore",
        help="after losing the Kafka cluster: bring the new one's topics to the database's"
        " state (workers and APIs stopped)",
    )
    how = restore.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--from-snapshots",
        action="store_true",
        help="the cases' changelog from their snapshots, then the ledger entries after them",
    )
    how.add_argument(
        "--whole-ledger", action="store_true", help="queue every ledger entry for publishing"
    )

    schemas = commands.add_parser("schemas", help="contracts in schemas/")
    schemas.add_argument("action", choices=["export"])

    demo = commands.add_parser(
        "demo", help="post a simulated hospital (a fortnight of history, then live) to a service"
    )
    demo.add_argument("--url", default="http://127.0.0.1:8000")
    demo.add_argument(
        "--data-dir", type=Path, default=Path("./var"), help="where the run's state is kept"
    )
    demo.add_argument("--resume", action="store_true", help="continue the last run's stays")
    demo.add_argument("--api-key", help="the key for --url (default: DRGWATCH_API_KEY)")
    demo.add_argument("--seed", type=int, help="the same seed and clock give the same hospital")
    demo.add_argument("--history-days", type=int, default=14, help="days of history (default 14)")
    demo.add_argument(
        "--earlier-months",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="post the stays discharged in the months before the history (default: on)",
    )
    demo.add_argument(
        "--live-minutes", type=float, default=4.0, help="real minutes of the live phase"
    )
    demo.add_argument(
        "--live-hours", type=float, default=12.0, help="hospital hours the live phase shows"
    )

    bench = commands.add_parser(
        "bench", help="drgwatch's worker against a bare consumer, Quix Streams and plain Faust"
    )
    bench.add_argument("--quick", action="store_true", help="a small workload (under a minute)")
    bench.add_argument("--json", type=Path, help="also write the figures to this file")
    bench.add_argument("--lines", type=int, help="charge lines (default 200,000; quick 10,000)")
    bench.add_argument("--cases", type=int, help="cases (default 5,000; quick 500)")
    bench.add_argument("--partitions", type=int, default=8)
    bench.add_argument(
        "--only",
        help="comma-separated contenders: ceiling,quix,quix_core (drgwatch's core in Quix "
        "Streams),naive_faust,drgwatch (with the shipped rules),drgwatch_no_rules,"
        "drgwatch_one_partition,drgwatch_x2",
    )
    bench.add_argument(
        "--per-partition",
        action="store_true",
        help="also run the worker on a one-partition topic: events_per_s_per_partition "
        "measured on one partition (otherwise worked out from the worker's run)",
    )
    bench.add_argument(
        "--no-full-path",
        action="store_true",
        help="skip the full-path part (HTTP ingest to queryable state, latency, lookups)",
    )
    bench.add_argument(
        "--open-cases", type=int, help="open cases for lookup, memory and restart (100,000)"
    )

    reference_commands.add_parsers(commands)
    chargemaster_commands.add_parser(commands)
    rule_commands.add_parser(commands)
    user_commands.add_parser(commands)
    briefing_command.add_parser(commands)

    args = parser.parse_args(argv)
    try:
        common = CommonSettings()
        log_level, log_format = common.log_level, common.resolved_log_format
    except ValueError:  # settings the command itself reports in one line (e.g. `db`)
        log_level, log_format = "INFO", _fallback_log_format()
    logs.configure(log_format, log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic's own lines (one per migration context); schema changes are logged by
    # services/storage/schema.py and printed by `drgwatch db`
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "up":
        from services.stack import up as start_stack

        return start_stack(
            port=args.port,
            broker_port=args.broker_port,
            mllp_port=args.mllp_port,
            data_dir=args.data_dir,
            demo=args.demo or args.resume,
            resume_demo=args.resume,
            partitions=args.partitions,
        )
    if args.command == "api":
        return _serve_api(args.host, args.port, args.fd, args.mllp_port, args.mllp_fd)
    if args.command == "worker":
        return _run_worker()
    if args.command == "intake":
        return _run_intake(args.metrics_port)
    if args.command == "feed":
        return feed_command.run(args)
    if args.command == "db":
        return db_commands.run(args)
    if args.command == "rules" and args.rules_command == "validate":
        return rule_commands.run(args)
    if args.command == "topics":
        from services.cli.topics import run as run_topics

        return run_topics()
    if args.command == "restore":
        return _restore(whole_ledger=args.whole_ledger)
    if args.command in DATA_COMMANDS:
        return _run_data_command(args)
    if args.command == "schemas":
        from services.contracts import export

        for path in export():
            print(path)
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "demo":
        from services.demo.run import run_demo_at

        return asyncio.run(
            run_demo_at(
                args.url,
                state_dir=args.data_dir,
                resume=args.resume,
                seed=args.seed,
                live_minutes=args.live_minutes,
                live_hours=args.live_hours,
                history_days=args.history_days,
                earlier_months=args.earlier_months,
                zone=CommonSettings().zone,
                api_key=args.api_key or os.environ.get("DRGWATCH_API_KEY"),
            )
        )
    return 2


def _restore(*, whole_ledger: bool) -> int:
    """`drgwatch restore`: the topics created, then the new cluster restored (restore.py)."""
    from services.alerting import restore
    from services.alerting.exceptions import ChangelogNotEmpty
    from services.stack import prepare_database
    from services.topics import create_topics

    settings = CommonSettings()
    asyncio.run(create_topics(settings))
    if whole_ledger:
        replayed = asyncio.run(prepare_database(settings, replay_ledger=True, load_sample=False))
        print(
            f"{replayed} ledgered events queued for publishing; delete each worker's"
            " DRGWATCH_DATA_DIR/worker-tables, then start the workers and APIs"
        )
        return 0
    try:
        asyncio.run(prepare_database(settings, replay_ledger=False, load_sample=False))
        restored = asyncio.run(restore.restore_from_snapshots(settings))
    except ChangelogNotEmpty as error:
        print(f"drgwatch restore: {error.message}; only a new cluster", file=sys.stderr)
        return 1
    print(
        f"{restore.describe(restored)}; delete each worker's DRGWATCH_DATA_DIR/worker-tables,"
        " then start the workers and APIs"
    )
    return 0


def _fallback_log_format() -> logs.LogFormat:
    """The log format when the settings as a whole do not validate: the one asked for,
    else the mode's (JSON unless the mode is embedded)."""
    asked = os.environ.get("DRGWATCH_LOG_FORMAT", "").lower()
    if asked in ("json", "text"):
        return "json" if asked == "json" else "text"
    return "text" if os.environ.get("DRGWATCH_MODE", "embedded") == "embedded" else "json"


def _serve_api(
    host: str, port: int, fd: int | None, mllp_port: int | None, mllp_fd: int | None
) -> int:
    import socket

    import uvicorn

    from services.api.app import create_app
    from services.api.server import StoppingServer
    from services.api.settings import ApiSettings
    from services.cli import collector

    settings = ApiSettings()
    # a socket handed down by `drgwatch up` or a test: bound and listening already
    listener = socket.socket(fileno=fd) if fd is not None else None
    if listener is not None:
        host = str(listener.getsockname()[0])
    if settings.mode == "embedded" and host not in {"127.0.0.1", "localhost", "::1"}:
        print("embedded mode serves loopback only; use DRGWATCH_MODE=production", file=sys.stderr)
        return 2
    refusal = db_commands.start_refusal(settings)
    if refusal:
        print(f"drgwatch api: {refusal}", file=sys.stderr)
        return 1
    mllp = socket.socket(fileno=mllp_fd) if mllp_fd is not None else None
    mllp_port = mllp_port if mllp_port is not None else settings.mllp_port
    if mllp is None and mllp_port is not None:
        from services.ports import listening_socket

        mllp = listening_socket(mllp_port, host=host)
    app = create_app(settings, mllp=mllp)
    config = uvicorn.Config(
        collector.FreezeAfterWarmUp(app),
        host=host,
        port=port,
        # the process's own logging (services/logs.py) writes uvicorn's lines too; the
        # access log in production only, where operators read it
        log_config=None,
        log_level=None,
        access_log=settings.mode == "production",
        # requests in flight are answered within the bound, then the rest are cut
        timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds)),
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    # what the process keeps for its lifetime, out of the collector's full passes: the
    # modules and the app now, then what start-up and the first requests build
    collector.freeze()
    server = collector.server_freezing_after_start(config, StoppingServer, app=app)
    server.run(sockets=[listener] if listener is not None else None)
    return 0


def _run_worker() -> int:
    from services.alerting.settings import WorkerSettings
    from services.alerting.worker import create_worker, run

    settings = WorkerSettings()
    refusal = db_commands.start_refusal(settings)
    if refusal:
        print(f"drgwatch worker: {refusal}", file=sys.stderr)
        return 1
    run(create_worker(settings), settings.worker_log_level)
    return 0


def _run_intake(metrics_port: int | None) -> int:
    from services.ingest.intake.run import serve
    from services.ingest.intake.settings import IntakeSettings

    try:
        settings = IntakeSettings()
    except ValidationError as error:
        print(f"drgwatch intake: {summary(field_errors(error))}", file=sys.stderr)
        return 2
    if metrics_port is not None:
        settings = settings.model_copy(update={"intake_metrics_port": metrics_port})
    refusal = db_commands.start_refusal(settings)
    if refusal:
        print(f"drgwatch intake: {refusal}", file=sys.stderr)
        return 1
    asyncio.run(serve(settings))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import orjson

    from services.bench.runner import CONTENDERS, Plan, bench, table

    if args.only:
        contenders = tuple(args.only.split(","))
    else:  # the two-worker run is left out of the routine check
        contenders = tuple(
            c
            for c in CONTENDERS
            if c != "drgwatch_one_partition" and not (args.quick and c == "drgwatch_x2")
        )
    if args.per_partition and "drgwatch_one_partition" not in contenders:
        contenders += ("drgwatch_one_partition",)
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        print(f"drgwatch bench: unknown contenders {sorted(unknown)}", file=sys.stderr)
        return 2
    plan = Plan(
        lines=args.lines or (10_000 if args.quick else 200_000),
        cases=args.cases or (500 if args.quick else 5_000),
        partitions=args.partitions,
        contenders=contenders,
    )
    result = bench(plan, None)
    if not args.no_full_path:
        from services.bench.fullpath import FullPlan, full_path

        full = FullPlan(
            lines=plan.lines,
            cases=plan.cases,
            open_cases=args.open_cases or (3_000 if args.quick else 100_000),
            latency_seconds=3.0 if args.quick else 20.0,
            lookup_seconds=3.0 if args.quick else 15.0,
            precheck_seconds=3.0 if args.quick else 15.0,
            restart=not args.quick,
        )
        result["full_path"] = full_path(full)
        result["latency_ms"] = {
            "ingest_to_alert_on_stream": result["full_path"]["alert_latency"]["latency_ms"],
            "case_lookup": result["full_path"]["case_lookup"]["latency_ms"],
            "precheck": result["full_path"]["precheck"]["latency_ms"],
        }
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(table(result))
    drgwatch_right = result["correct"] or "drgwatch" not in contenders
    return 0 if drgwatch_right and all(result["exact"].values()) else 1


def _run_data_command(args: argparse.Namespace) -> int:
    """A command on reference data or identities: one line on stderr when it fails."""
    action = getattr(args, f"{args.command}_command", "")
    command = " ".join(part for part in ("drgwatch", args.command, action) if part)
    try:
        return asyncio.run(_data_command(args))
    except CommandError as error:
        print(f"{command}: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - a user gets one line, the log the stack
        log.debug("%s failed", command, exc_info=True)
        print(
            f"{command}: unexpected {type(error).__name__} (DRGWATCH_LOG_LEVEL=DEBUG shows where)",
            file=sys.stderr,
        )
        return 1


async def _data_command(args: argparse.Namespace) -> int:
    try:
        settings = CommandSettings()
    except ValidationError as error:
        raise CommandError(f"DRGWATCH_* settings: {summary(field_errors(error))}") from None
    target = resolve(args, settings)
    if args.command == "rules" and args.directory is not None:
        if target.url is not None:
            raise CommandError("with --url the service reloads its own rules directory: no DIR")
        settings = settings.model_copy(update={"rules_dir": args.directory})
    async with connect(target, settings) as client:
        await DATA_COMMANDS[args.command](args, client, Output(as_json=args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
