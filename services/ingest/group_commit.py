"""Group commit: the submissions that arrive together share one ledger transaction.

Each POST /v1/events is validated on its own (a refused one never joins a group), then
queued. One writer at a time takes everything queued (up to `max_events` events) and
records it in one transaction (service.record_group); while that transaction commits,
the next submissions queue and form the next group. So an idle API commits each
submission at once, and a busy one pays a commit, and SQLite's write lock, per group
rather than per submission. Every submission is answered only after the commit that
holds it, with its own results, as if recorded alone in the order they were queued:
an event repeated in a later submission of the group is its duplicate, and each case's
events are numbered in that order.

A group that cannot be recorded fails as a whole (nothing of it was committed): each of
its submissions gets the same LedgerUnavailable (503) or error, as one submission alone
would have. A group whose pooled connection turns out dead before anything was written
(the database restarted since it was last used) is recorded once more on a new one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import service as ingest_service
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected
from services.ingest.service import Recorded, Submission
from services.storage.engine import is_unavailable


@dataclass(slots=True)
class _Queued:
    submission: Submission
    answer: asyncio.Future[Recorded] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Records submissions in shared transactions, one group at a time (see the module)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, max_events: int) -> None:
        self._sessions = sessions
        self._max_events = max_events
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, submission: Submission) -> Recorded:
        """Record the submission with whatever arrives with it; return its results and
        accepted events once the transaction holding it has committed. Raises
        PayloadRejected when nothing of it could be recorded (its dead letters are the
        caller's to keep), LedgerUnavailable when the database cannot take it now."""
        queued = _Queued(submission)
        self._queue.append(queued)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await queued.answer

    def _next_group(self) -> list[_Queued]:
        """The queued submissions in order, up to max_events events (at least one)."""
        events = 0
        taken = 0
        for queued in self._queue:
            events += queued.submission.events
            if taken and events > self._max_events:
                break
            taken += 1
        group, self._queue = self._queue[:taken], self._queue[taken:]
        return group

    async def _write_all(self) -> None:
        try:
            while self._queue:
                await self._write(self._next_group())
        finally:
            self._writer = None
            if self._queue:  # cancelled: nothing more is written for these
                for queued in self._queue:
                    queued.answer.cancel()
                self._queue = []

    async def _write(self, group: list[_Queued]) -> None:
        submissions = [queued.submission for queued in group]
        try:
            try:
                outcomes = await self._commit(submissions)
            except LedgerUnavailable as error:
                cause = error.__cause__
                if not (isinstance(cause, DBAPIError) and cause.connection_invalidated):
                    raise
                outcomes = await self._commit(submissions)
        except DBAPIError as error:
            # from the commit: the database away is a 503, anything else each caller's 500
            _fail(group, LedgerUnavailable() if is_unavailable(error) else error, cause=error)
            return
        except LedgerUnavailable as error:
            _fail(group, LedgerUnavailable(), cause=error.__cause__)
            return
        except Exception as error:  # noqa: BLE001 - each caller answers it as its own
            _fail(group, error)
            return
        except BaseException:
            for queued in group:
                queued.answer.cancel()
            raise
        for queued, outcome in zip(group, outcomes, strict=True):
            if queued.answer.done():  # its caller went away
                continue
            if isinstance(outcome, PayloadRejected):
                queued.answer.set_exception(outcome)
            else:
                queued.answer.set_result(outcome)

    async def _commit(self, submissions: list[Submission]) -> list[Recorded | PayloadRejected]:
        async with self._sessions() as db_session:
            outcomes = await ingest_service.record_group(
                db_session=db_session, submissions=submissions
            )
            await db_session.commit()
            return outcomes


def _fail(group: list[_Queued], error: Exception, *, cause: BaseException | None = None) -> None:
    """Every submission of the group fails with `error` (nothing of it was committed)."""
    for queued in group:
        if queued.answer.done():
            continue
        if isinstance(error, LedgerUnavailable):
            # one exception each: every caller raises (and chains) its own
            error = LedgerUnavailable()
            error.__cause__ = cause
        queued.answer.set_exception(error)
