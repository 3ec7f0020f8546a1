"""Project the cases table's changelog into the database, in batches.

One consumer group reads the changelog (and the dead-letter topic); each batch is
written in one transaction (latest state per case, alerts inserted once by id), then
offsets are committed. Replays and redeliveries rewrite the same rows, so the database
converges on the table's state with no synchronous write per event on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerting.alert_inserts import hold_alert_lock, insert_alerts
from services.alerting.settings import WorkerSettings
from services.casecost.state import state_data
from services.settings import CommonSettings
from services.storage.dead_letters import dead_letter
from services.storage.engine import upsert
from services.storage.models import CaseRecord, CaseSnapshot, WorkerHeartbeat
from services.topics import create_topics

if TYPE_CHECKING:
    from services.casecost.state import CaseState

log = logging.getLogger(__name__)

CASE_COLUMNS = [
    "status",
    "department",
    "drg_code",
    "drg_name",
    "insurance_scheme",
    "standard_cost",
    "total_cost",
    "ratio",
    "level",
    "ratio_flag",
    "cost_by_category",
    "top_contributors",
    "admitted_at",
    "discharged_at",
    "utc_offset_minutes",
    "avg_los_days",
    "events_applied",
    "last_event_at",
    "updated_at",
    "projected_total",
    "projected_ratio",
    "cost_by_day",
    "cost_by_orderer",
    "admitted_day",
    "discharged_day",
]
EPOCH = date(1970, 1, 1)


def case_row(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A table state (plain data) -> the `cases` row."""
    from services.casecost.state import CaseState

    return _case_row(CaseState.from_dict(state), now)


def _case_row(case: CaseState, now: datetime) -> dict[str, Any]:
    offset = _offset_minutes(case.admitted_at or case.first_event_at)
    return {
        "hospital_id": case.hospital_id,
        "case_id": case.case_id,
        "status": case.status,
        "department": case.department,
        "drg_code": case.drg_code,
        "drg_name": case.drg_name,
        "insurance_scheme": case.insurance_scheme,
        "standard_cost": case.standard_cost,
        "total_cost": case.total_cost,
        "ratio": case.ratio,
        "level": case.level,
        "ratio_flag": case.ratio_flag,
        "cost_by_category": {k: str(v) for k, v in case.cost_by_category.items()},
        "top_contributors": case.top_contributors(),
        "admitted_at": case.admitted_at,
        "discharged_at": case.discharged_at,
        "utc_offset_minutes": offset,
        "avg_los_days": case.avg_los_days,
        "events_applied": case.events_applied,
        "last_event_at": case.last_event_at,
        "updated_at": now,
        "projected_total": case.projected_total,
        "projected_ratio": case.projected_ratio,
        "cost_by_day": {day: str(amount) for day, amount in sorted(case.cost_by_day.items())},
        "cost_by_orderer": {
            orderer: str(amount) for orderer, amount in sorted(case.cost_by_orderer.items())
        },
        "admitted_day": _day_number(case.admitted_at, offset),
        "discharged_day": _day_number(case.discharged_at, offset),
    }


def _day_number(moment: datetime | None, offset_minutes: int) -> int | None:
    """The local day of `moment` at the case's UTC offset, as days since 1970-01-01."""
    if moment is None:
        return None
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return (local.date() - EPOCH).days


def _offset_minutes(moment: datetime | None) -> int:
    offset = None if moment is None else moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": alert["alert_id"],
        "hospital_id": alert["hospital_id"],
        "case_id": alert["case_id"],
        "department": alert["department"],
        "drg_code": alert["drg_code"],
        "level": alert["level"],
        "previous_level": alert["previous_level"],
        "transition": alert["transition"],
        "total_cost": Decimal(alert.get("total_cost") or 0),
        # a rule finding on a case not priced yet has neither: kept as 0
        "standard_cost": Decimal(alert.get("standard_cost") or 0),
        "ratio": Decimal(alert.get("ratio") or 0),
        "event_id": alert["event_id"],
        "occurred_at": datetime.fromisoformat(alert["occurred_at"]),
        "raised_at": datetime.fromisoformat(alert["raised_at"]),
        "top_contributors": alert["top_contributors"],
        # alerts raised before kinds existed are level alerts
        "kind": alert.get("kind", "level"),
        "projected_total": _decimal(alert.get("projected_total")),
        "projected_ratio": _decimal(alert.get("projected_ratio")),
        "rule_id": alert.get("rule_id"),
        "rule_version": alert.get("rule_version"),
        "rule_period": alert.get("period") if alert.get("kind") == "rule" else None,
        # what the rule found, with the rule's name as it was then
        "detail": None
        if alert.get("kind") != "rule"
        else {**alert.get("detail", {}), "rule_name": alert.get("rule_name")},
        "text_zh": alert.get("text_zh"),
        "text_en": alert.get("text_en"),
    }


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class CommittedAlerts:
    """The ids of alerts this projector saw committed, most recent last (bounded).

    A case state carries its latest alerts with every write, so the same alerts come by
    again and again; an id committed before needs no insert (the insert would be ignored).
    Forgetting one only costs that ignored insert.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._ids

    def add(self, alert_ids: Iterable[str]) -> None:
        for alert_id in alert_ids:
            self._ids[alert_id] = None
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)


async def write_batch(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    states: list[dict[str, Any]],
    dead: list[dict[str, Any]],
    earlier_states: Sequence[dict[str, Any]] = (),
    committed: CommittedAlerts | None = None,
    state_values: Sequence[bytes] | None = None,
) -> None:
    """One transaction: upsert case rows, insert new alerts (by id), keep dead letters.

    `states` are the latest state of each case; alerts are taken from them and from
    `earlier_states` of the same batch, which may hold alerts the latest no longer keeps.
    `state_values`, the changelog values `states` were decoded from (in the same order),
    are kept as the cases' snapshots (restore.py starts a new broker's changelog from
    them); without them no snapshot is written.
    """
    from services.casecost.state import CaseState

    now = datetime.now(UTC)
    cases = [CaseState.from_dict(state) for state in states]
    alerts = {
        alert["alert_id"]: alert
        for state in [*earlier_states, *states]
        for alert in state["alerts"]
        if committed is None or alert["alert_id"] not in committed
    }
    # alert inserts in raise order, a case's own in its alert sequence (alerts raised in
    # one batch share their raise time), so that history and the live stream follow time
    ordered_alerts = [
        alert_row(alert)
        for alert in sorted(
            alerts.values(),
            key=lambda a: (a["raised_at"], a["hospital_id"], a["case_id"], a.get("sequence", 0)),
        )
    ]
    async with sessions() as db_session:
        if cases:
            await db_session.execute(
                upsert(engine, CaseRecord, ["hospital_id", "case_id"], CASE_COLUMNS),
                [_case_row(case, now) for case in cases],
            )
        if cases and state_values is not None:
            await db_session.execute(
                upsert(
                    engine, CaseSnapshot, ["hospital_id", "case_id"], ["next_sequence", "state"]
                ),
                [
                    {
                        "hospital_id": case.hospital_id,
                        "case_id": case.case_id,
                        "next_sequence": case.next_sequence,
                        "state": value,
                    }
                    for case, value in zip(cases, state_values, strict=True)
                ],
            )
        if ordered_alerts:
            # several projectors (one per worker) and the watches take turns here until
            # their commit, so alerts commit in seq order
            await hold_alert_lock(db_session)
            await insert_alerts(db_session, ordered_alerts)
        for letter in dead:
            db_session.add(
                dead_letter(
                    stage="stream",
                    raw=_maybe_json(letter.get("payload", "")),
                    reason=str(letter.get("reason", "unprocessable")),
                    errors=[],
                    now=now,
                )
            )
        await db_session.commit()
    if committed is not None:
        committed.add(alerts)


def _maybe_json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def consumer_group(settings: CommonSettings) -> str:
    """The projectors' consumer group (one per deployment, shared by every worker's)."""
    return f"{settings.topic_prefix}-projector"


async def run(
    settings: WorkerSettings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Forever: consume changelog and dead letters, write batches, commit offsets."""
    while True:
        try:
            # before asking for their metadata, which would create them with defaults
            await create_topics(settings)
            break
        except KafkaError as error:
            log.warning("projector cannot reach the broker yet: %s", error)
            await asyncio.sleep(1)
    consumer = AIOKafkaConsumer(
        settings.case_changelog_topic,
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=consumer_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.projector_batch,
        # short long-polls: a state change should reach the API in well under a second
        fetch_max_wait_ms=settings.projector_wait_ms,
        rebalance_timeout_ms=int(settings.rebalance_timeout * 1000),
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        metadata_max_age_ms=5000,
    )
    while True:
        try:
            await consumer.start()
            break
        except KafkaError as error:
            log.warning("projector cannot reach the broker yet: %s", error)
            await asyncio.sleep(1)
    committed = CommittedAlerts()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=settings.projector_wait_ms)
            if not batches:
                continue
            latest: dict[bytes, dict[str, Any]] = {}
            values: dict[bytes, bytes] = {}
            replaced: list[dict[str, Any]] = []
            dead: list[dict[str, Any]] = []
            for tp, records in batches.items():
                for record in records:
                    if record.value is None:
                        continue
                    if tp.topic == settings.dead_letter_topic:
                        dead.append(orjson.loads(record.value))
                        continue
                    key = record.key or b""
                    if key in latest:
                        replaced.append(latest[key])
                    latest[key] = state_data(record.value)
                    values[key] = record.value
            while True:
                try:
                    await write_batch(
                        engine,
                        sessions,
                        list(latest.values()),
                        dead,
                        replaced,
                        committed,
                        state_values=[values[key] for key in latest],
                    )
                    break
                except (SQLAlchemyError, OSError) as error:
                    log.warning("projector cannot write (%s); retrying", type(error).__name__)
                    await asyncio.sleep(1)
            await consumer.commit()
    finally:
        await consumer.stop()


async def beat(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    *,
    worker_id: str,
    ready: bool,
    partitions: int,
) -> None:
    """Record that this worker is alive (and whether it holds partitions)."""
    try:
        async with sessions() as db_session:
            await db_session.execute(
                upsert(
                    engine, WorkerHeartbeat, ["worker_id"], ["ready", "partitions", "updated_at"]
                ),
                [
                    {
                        "worker_id": worker_id,
                        "ready": ready,
                        "partitions": partitions,
                        "updated_at": datetime.now(UTC),
                    }
                ],
            )
            await db_session.commit()
    except (SQLAlchemyError, OSError) as error:
        log.warning("heartbeat not written: %s", type(error).__name__)
