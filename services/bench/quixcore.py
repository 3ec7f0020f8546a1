"""drgwatch's pure core as a Quix Streams stateful step, for the benchmark's `quix_core`.

The step does per record what the worker's batch path (services/alerting/batch.py) does
per message, with the same functions: the seal checked, the value decoded, the event
folded into its case in ledger order (`receive`) with the worker's price book and rules,
the case's state kept as the changelog bytes the worker writes. Only the shell differs:
Quix's consumer, its RocksDB state (a value set per record, where the worker writes each
changed case once per batch) and its producer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from quixstreams.state import State

from services.alerting.batch import LiveStates, decode, state_bytes
from services.alerting.exceptions import UnprocessableEvent
from services.alerting.settings import WorkerSettings
from services.alerting.worker import ReferenceData
from services.casecost.apply import Release, new_case, receive, release_held
from services.casecost.pricing import PriceBook
from services.casecost.state import CaseState, state_data
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import NOT_FROM_LEDGER, EventSeal, case_key, case_sequence


class CoreStep:
    """drgwatch's core as a Quix stateful step: one record as `apply_batch` takes it (seal,
    decode, `receive`), the case's state read from and written to Quix's state as the
    changelog bytes the worker writes; returns the alerts raised, as JSON."""

    def __init__(self, price_book: PriceBook, seal: EventSeal, settings: WorkerSettings) -> None:
        self.price_book = price_book
        self.seal = seal
        self.gap_timeout = timedelta(seconds=settings.sequence_gap_seconds)
        self.live = LiveStates(settings.live_states)
        self.finals: dict[bytes, bytes] = {}  # each case's latest state, as put in the store
        self.unprocessable = 0

    def __call__(
        self, key: bytes, value: bytes, headers: Any, state: State[str, Any]
    ) -> list[bytes]:
        try:
            if not self.seal.verify(key, value, headers):
                raise UnprocessableEvent(NOT_FROM_LEDGER)
            event, _ = decode(value)
        except UnprocessableEvent:
            self.unprocessable += 1
            return []
        case = case_key(event.hospital_id, event.case_id)
        stored = state.get_bytes("case")
        current = self.live.take(case, stored)
        if current is None:
            current = (
                CaseState.from_dict(state_data(stored))
                if stored
                else new_case(event.hospital_id, event.case_id)
            )
        now = datetime.now(UTC)
        if isinstance(event, Release):
            outcome = release_held(current, self.price_book, now)
        else:
            outcome = receive(
                current,
                event,
                case_sequence(headers),
                self.price_book,
                now,
                gap_timeout=self.gap_timeout,
            )
        if outcome.changed:
            written = state_bytes(outcome.state)
            state.set_bytes("case", written)
            self.live.keep(case, written, outcome.state)
            self.finals[case] = written
        return [orjson.dumps(alert) for alert in outcome.alerts]

    def cases(self) -> dict[str, dict[str, Any]]:
        """The final states' figures the benchmark checks, by case key."""
        cases = {}
        for case, written in self.finals.items():
            final = state_data(written)
            cases[case.decode()] = {
                "total_cost": final["total_cost"],
                "level": final["level"],
                "events_applied": final["events_applied"],
            }
        return cases


async def worker_reference(settings: WorkerSettings) -> tuple[PriceBook, EventSeal]:
    """The price book the worker prices with (the catalogue in the database and the rule
    files' rules, as the worker compiles them) and the events topic's seal."""
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        reference = ReferenceData(sessions, settings.zone)
        reference.use_rules(load_rule_files(settings.rules_dir or DEFAULT_RULES_DIR))
        await reference.refresh_until_done()
        return reference.price_book, await load_seal(sessions)
    finally:
        await engine.dispose()
