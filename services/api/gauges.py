"""Gauges of the pipeline the API reads from its database: open cases by level and the
ingest ledger's events not yet published.

Counted when /metrics is read, at most once every DRGWATCH_PIPELINE_METRICS_SECONDS:
several Prometheus servers, or a scrape interval shorter than that, do not count again.
The open-case count groups the cases table by level (a scan of the open cases); the
ledger's count reads the `ix_ledger_unpublished` index. A database that cannot answer
leaves the last figures in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics import LEDGER_UNPUBLISHED, OPEN_CASES
from services.storage.models import CaseRecord, LedgerEntry

log = logging.getLogger(__name__)

# levels always exported, so that a level with no case shows 0 rather than no series
LEVELS = ("none", "blue", "yellow", "red")


class PipelineGauges:
    """Refreshes OPEN_CASES and LEDGER_UNPUBLISHED when they are older than `every`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.every = every
        self.clock = clock
        self._counted_at: float | None = None

    async def refresh(self) -> None:
        now = self.clock()
        if self._counted_at is not None and now - self._counted_at < self.every:
            return
        self._counted_at = now
        try:
            async with self.sessions() as db_session:
                by_level = dict(
                    (
                        await db_session.execute(
                            select(CaseRecord.level, func.count())
                            .where(CaseRecord.discharged_at.is_(None))
                            .group_by(CaseRecord.level)
                        )
                    )
                    .tuples()
                    .all()
                )
                unpublished = await db_session.scalar(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(LedgerEntry.published.is_(False))
                )
        except (SQLAlchemyError, OSError) as error:
            log.warning("pipeline gauges not counted (%s)", type(error).__name__)
            return
        for level in sorted({*LEVELS, *by_level}):
            OPEN_CASES.labels(level=level).set(by_level.get(level, 0))
        LEDGER_UNPUBLISHED.set(unpublished or 0)
