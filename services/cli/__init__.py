"""The `drgwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date
from pathlib import Path

from services.cli import db as db_commands
from services.cli import users as user_commands
from services.settings import CommonSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drgwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the whole embedded stack (Ctrl-C stops it)")
    up.add_argument("--port", type=int, default=8000, help="HTTP origin port (default 8000)")
    up.add_argument("--broker-port", type=int, default=9092, help="Kafka port (default 9092)")
    up.add_argument("--data-dir", type=Path, default=Path("./var"), help="default ./var")
    up.add_argument("--partitions", type=int, default=8, help="event topic partitions")
    up.add_argument("--demo", action="store_true", help="also replay a simulated hospital day")

    api = commands.add_parser("api", help="serve ingest and query HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    commands.add_parser("worker", help="run the Faust worker")

    db_commands.add_parser(commands)

    topics = commands.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"])

    drg = commands.add_parser("drg", help="DRG reference data")
    drg_commands = drg.add_subparsers(dest="drg_command", required=True)
    drg_import = drg_commands.add_parser(
        "import", help="load a catalogue CSV: drg_code,name,weight,avg_los_days,standard_cost"
    )
    drg_import.add_argument("file", type=Path)
    drg_import.add_argument("--name", help="catalogue name (default: the file name)")
    drg_import.add_argument("--effective-from", type=date.fromisoformat, default=date.today())
    drg_import.add_argument(
        "--base-rate",
        action="append",
        default=[],
        metavar="SCHEME=AMOUNT",
        help="base rate per insurance scheme, e.g. employee=12252.70 (repeatable)",
    )
    drg_import.add_argument("--hospital-id", help="catalogue for one hospital only")
    drg_import.add_argument("--url", help="post to a running service instead of the database")

    schemas = commands.add_parser("schemas", help="contracts in schemas/")
    schemas.add_argument("action", choices=["export"])

    demo = commands.add_parser("demo", help="post a simulated hospital day to a running service")
    demo.add_argument("--url", default="http://127.0.0.1:8000")
    demo.add_argument("--seconds", type=float, default=45.0, help="how long the day takes")
    demo.add_argument("--cases", type=int, default=40)

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
        help="comma-separated contenders: ceiling,quix,naive_faust,drgwatch,drgwatch_x2",
    )
    bench.add_argument(
        "--no-full-path",
        action="store_true",
        help="skip the full-path part (HTTP ingest to queryable state, latency, lookups)",
    )
    bench.add_argument(
        "--open-cases", type=int, help="open cases for lookup, memory and restart (100,000)"
    )

    user_commands.add_parser(commands)

    args = parser.parse_args(argv)
    try:
        log_level = CommonSettings().log_level
    except ValueError:  # settings the command itself reports in one line (e.g. `db`)
        log_level = "INFO"
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic's own lines (one per migration context); schema changes are logged by
    # services/storage/schema.py and printed by `drgwatch db`
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "up":
        from services.stack import up as start_stack

        return start_stack(
            port=args.port,
            broker_port=args.broker_port,
            data_dir=args.data_dir,
            demo=args.demo,
            partitions=args.partitions,
        )
    if args.command == "api":
        return _serve_api(args.host, args.port)
    if args.command == "worker":
        return _run_worker()
    if args.command == "db":
        return db_commands.run(args)
    if args.command == "topics":
        from services.topics import create_topics

        asyncio.run(create_topics(CommonSettings()))
        print("topics ready")
        return 0
    if args.command == "drg":
        return _import_catalogue(args)
    if args.command == "schemas":
        from services.contracts import export

        for path in export():
            print(path)
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "users":
        return asyncio.run(user_commands.run(args))
    if args.command == "demo":
        from services.demo import run_demo

        return asyncio.run(run_demo(args.url, seconds=args.seconds, cases=args.cases))
    return 2


def _serve_api(host: str, port: int) -> int:
    import uvicorn

    from services.api.app import create_app
    from services.api.settings import ApiSettings

    settings = ApiSettings()
    if settings.mode == "embedded" and host not in {"127.0.0.1", "localhost", "::1"}:
        print("embedded mode serves loopback only; use DRGWATCH_MODE=production", file=sys.stderr)
        return 2
    refusal = db_commands.start_refusal(settings)
    if refusal:
        print(f"drgwatch api: {refusal}", file=sys.stderr)
        return 1
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
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


def _bench(args: argparse.Namespace) -> int:
    import orjson

    from services.bench.runner import CONTENDERS, Plan, bench, table

    if args.only:
        contenders = tuple(args.only.split(","))
    else:  # the two-worker run is left out of the routine check
        contenders = tuple(c for c in CONTENDERS if not (args.quick and c == "drgwatch_x2"))
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
            restart=not args.quick,
        )
        result["full_path"] = full_path(full)
        result["latency_ms"] = {
            "ingest_to_alert_on_stream": result["full_path"]["alert_latency"]["latency_ms"],
            "case_lookup": result["full_path"]["case_lookup"]["latency_ms"],
        }
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(table(result))
    return 0 if result["correct"] or "drgwatch" not in contenders else 1


def _import_catalogue(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.reference import service as catalogue_service
    from services.reference.schemas import CatalogueIn

    try:
        rates = dict(item.split("=", 1) for item in args.base_rate)
        groups = catalogue_service.groups_from_csv(args.file.read_text(encoding="utf-8-sig"))
        catalogue_in = CatalogueIn(
            name=args.name or args.file.stem,
            effective_from=args.effective_from,
            hospital_id=args.hospital_id,
            base_rates=rates,
            groups=groups,
        )
    except (OSError, ValueError, ValidationError) as error:
        print(f"drgwatch drg import: {error}", file=sys.stderr)
        return 2
    if args.url:
        import httpx

        response = httpx.post(
            f"{args.url.rstrip('/')}/v1/drg-catalogues",
            content=catalogue_in.model_dump_json(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        print(response.text)
        return 0 if response.status_code == 201 else 1

    async def store() -> int:
        from services.storage import schema
        from services.storage.engine import make_engine, session_factory
        from services.storage.exceptions import StorageError

        settings = CommonSettings()
        engine = make_engine(settings.resolved_database_url)
        try:
            try:
                await schema.prepare(engine, mode=settings.mode)
            except StorageError as error:  # a schema this process may not use (production)
                print(f"drgwatch drg import: {error.message}", file=sys.stderr)
                return 1
            async with session_factory(engine)() as db_session:
                created = await catalogue_service.create(
                    db_session=db_session, catalogue_in=catalogue_in
                )
                await db_session.commit()
            print(created.model_dump_json())
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(store())


if __name__ == "__main__":
    sys.exit(main())
