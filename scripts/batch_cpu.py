"""CPU per message of the worker's batch path, in-process, over the bench's workload.

    .venv/bin/python scripts/batch_cpu.py [--lines 200000] [--cases 5000] [--batch 25000]

The records are built once, sealed as the ledger's publisher seals them; then
`decode` alone runs over every record, and the whole `apply_batch` path (seal check,
decode, fold with the shipped case rules and the sample catalogue, state bytes, sends to
a sink that acknowledges at once) over them in batches, each timed with
time.process_time. CPU time, not wall time, so that other work on the machine moves the
figures less; compare runs made one after the other. The digest of the final states
shows two versions of the code wrote the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.alerting.batch import (  # noqa: E402
    LiveStates,
    Topics,
    apply_batch,
    decode,
    settle_collector,
)
from services.bench import workload as bench_workload  # noqa: E402
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook  # noqa: E402
from services.casecost.rules import NO_SWITCHES, CaseRules  # noqa: E402
from services.reference import service as catalogue_service  # noqa: E402
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files  # noqa: E402
from services.wire import EventSeal  # noqa: E402

SEAL = EventSeal(bytes(range(32)))
TOPICS = Topics(changelog="changelog", alerts="alerts", dead_letters="dead-letters")
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PARTITIONS = 8


@dataclass
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    offset: int
    partition: int
    timestamp: float | None = None  # epoch seconds of the receipt: none, as for a relay

    @property
    def tp(self) -> tuple[str, int]:
        return ("events", self.partition)


class Acknowledged:
    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


async def send(topic: str, *, key: bytes | None, value: bytes | None, partition: int | None) -> Any:
    return Acknowledged()


@dataclass
class Reference:
    price_book: PriceBook
    loaded: bool = True

    async def refresh_until_done(self) -> None:
        pass


def sealed(messages: list[tuple[bytes, bytes, int | None]], first: int = 0) -> list[Record]:
    """(key, value, case sequence) as events records sealed by the ledger's publisher,
    at offsets from `first`, each on its key's partition."""
    return [
        Record(
            key,
            value,
            SEAL.headers(key, value, sequence),
            first + offset,
            int.from_bytes(hashlib.sha1(key).digest()[:4]) % PARTITIONS,
        )
        for offset, (key, value, sequence) in enumerate(messages)
    ]


async def apply_in_batches(
    records: list[Record],
    size: int,
    *,
    store: Any,
    reference: Reference,
    live: LiveStates,
    send: Any = send,
    topics: Topics = TOPICS,
    before_each: Any = None,
) -> int:
    """The records through `apply_batch` `size` at a time (`before_each()` ahead of each
    batch), as the worker applies them; the dead letters sent."""
    dead_letters = 0
    for start in range(0, len(records), size):
        if before_each is not None:
            before_each()
        applied = await apply_batch(
            records[start : start + size],
            store=store,
            send=send,
            reference=reference,
            live=live,
            topics=topics,
            seal=SEAL,
            gap_timeout=timedelta(minutes=5),
            now=NOW,
            on_durable=lambda record: None,
        )
        dead_letters += applied.dead_letters
    return dead_letters


def sample_price_book() -> PriceBook:
    """The sample catalogue with the shipped case rules, as the bench's worker prices."""
    sample = catalogue_service.sample_catalogue()
    catalogue = Catalogue(
        catalogue_id=1,
        name=sample.name,
        effective_from=sample.effective_from,
        base_rates={scheme: Decimal(rate) for scheme, rate in sample.base_rates.items()},
        groups={
            group.drg_code: DrgGroup(
                group.drg_code, group.name, group.weight, group.avg_los_days, group.standard_cost
            )
            for group in sample.groups
        },
        sample=True,
    )
    book = PriceBook(version=1, catalogues=(catalogue,))
    rules = CaseRules.compile(load_rule_files(DEFAULT_RULES_DIR), book.zone, NO_SWITCHES)
    return replace(book, case_rules=rules if rules.rules else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=25_000)
    parser.add_argument(
        "--profile", metavar="FILE", help="also write a cProfile of the batch path to FILE"
    )
    args = parser.parse_args()

    load = bench_workload.generate(args.lines, args.cases, seed=11)
    records = sealed([(m.key, m.value, m.case_seq) for m in load.messages])
    reference = Reference(sample_price_book())
    # what was built so far is not the batch path's garbage; the collector as the
    # worker sets it up
    settle_collector()

    started = time.process_time()
    for record in records:
        decode(record.value)
    decode_cpu = time.process_time() - started

    store: dict[bytes, bytes] = {}
    live = LiveStates(20_000)

    profiler = cProfile.Profile() if args.profile else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    dead_letters = asyncio.run(
        apply_in_batches(records, args.batch, store=store, reference=reference, live=live)
    )
    batch_cpu = time.process_time() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)

    states = hashlib.sha256(b"".join(key + value for key, value in sorted(store.items())))
    count = len(records)
    print(
        f"{count:,} messages: decode {decode_cpu / count * 1e6:.2f} µs of CPU per message,"
        f" apply_batch {batch_cpu / count * 1e6:.2f} µs; {dead_letters} dead letters;"
        f" states {states.hexdigest()[:12]}"
    )


if __name__ == "__main__":
    main()
