"""The intake process: its database, producers and consumer, run until a stop signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from prometheus_client import start_http_server
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.hl7.profile import load_profiles
from services.ingest.intake.consumer import Intake, make_consumer, make_results_producer
from services.ingest.intake.settings import IntakeSettings
from services.ingest.publisher import EventPublisher
from services.stopping import exit_unless_stopped_within
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import EventSeal

log = logging.getLogger(__name__)


async def serve(settings: IntakeSettings) -> None:
    """Consume the intake topic until SIGTERM or SIGINT; the batch in hand is finished."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not stopping.is_set():
            log.warning("intake: stopping after the record in hand")
            exit_unless_stopped_within(settings.shutdown_seconds, "intake")
            stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    if settings.intake_metrics_port is not None:
        try:
            start_http_server(settings.intake_metrics_port, addr=settings.intake_metrics_host)
        except OSError as error:  # the intake matters more than its figures
            log.warning("intake: no metrics on port %d: %s", settings.intake_metrics_port, error)
    profiles = load_profiles(settings.hl7_profiles)  # an invalid one stops it here
    engine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    publisher = EventPublisher(
        settings.kafka_bootstrap,
        settings.events_topic,
        retention=timedelta(hours=settings.topic_retention_hours),
    )
    producer = make_results_producer(settings)
    consumer = make_consumer(settings)
    try:
        seal = await _seal(sessions, stopping)
        if seal is None:
            return
        await publisher.start(seal)
        await producer.start()
        await consumer.start()
        log.info("intake: consuming %s as group %s", settings.intake_topic, settings.intake_group)
        intake = Intake(
            settings,
            sessions=sessions,
            publisher=publisher,
            consumer=consumer,
            producer=producer,
            profiles=profiles,
        )
        # a fetch ends within its timeout, a batch in hand is finished, then it returns
        await intake.run(stopping)
    finally:
        await consumer.stop()
        await producer.stop()
        await publisher.stop()
        await engine.dispose()


async def _seal(
    sessions: async_sessionmaker[AsyncSession], stopping: asyncio.Event
) -> EventSeal | None:
    """The events topic's seal from the database, waiting while it is away (None: stopped
    meanwhile). Events go to the topic only sealed: the worker refuses any other."""
    while not stopping.is_set():
        try:
            return await load_seal(sessions)
        except (SQLAlchemyError, OSError) as error:
            log.warning("intake: database not reachable yet (%s); retrying", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1)
    return None
