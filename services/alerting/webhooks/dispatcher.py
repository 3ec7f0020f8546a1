"""The webhook dispatcher: fan alerts out into the outbox, then send what is due.

It runs as a task in each API process (DRGWATCH_WEBHOOKS=false turns it off). While
there is nothing to send it is idle: one query every `webhook_idle_check_seconds` asks
whether any subscription is enabled or any test message waits, and nothing else is
asked of the database. This process's subscription routes wake it at once (`wake`);
another API process learns of a new or re-enabled subscription within that interval
(its cursor starts at the alerts there were when it was made, so nothing is missed).
While active, every `webhook_poll_seconds`:

1. Fan-out, one transaction: for each enabled subscription, the alerts after its
   cursor become delivery rows (or digest entries), and the cursor moves past them.
   Delivery ids are derived from subscription and alert, and inserted ignoring
   conflicts, so a re-run cannot duplicate; on PostgreSQL the subscription rows are
   locked (SKIP LOCKED) so two processes do not fan out the same one at once.
   Alert sequence order is commit order, so a cursor never skips a late commit.
2. Send: due deliveries are claimed with a lease (UPDATE ... WHERE seq IN (SELECT ...
   FOR UPDATE SKIP LOCKED) RETURNING), each sent by a task of its own, and every
   attempt recorded. A tick does not wait for its sends: at most `concurrency` are in
   flight, at most `endpoint_concurrency` to one endpoint, and an endpoint that stops
   answering is paused (endpoints.py), so a slow or stalled endpoint delays nobody
   else's messages. Deliveries of endpoints that admit nothing now are left out of the
   claim (or given back at once, the first time one is seen).
   A process that dies mid-send leaves a lease that expires; the delivery is then sent
   again with the same webhook-id and bytes (receivers deduplicate by webhook-id).

Where a message may go is checked at every send, on the addresses the host resolves to,
and the connection made to a checked address (network.py, targets.py). What an attempt
records says what kind of failure it was, never an address, port or system message:
the delivery log must not map the network behind the service for its readers.

Outcomes: 2xx delivered; 410 Gone fails the delivery and disables the subscription at
once; anything else is retried after jittered exponential backoff, or after
Retry-After on 429/503 if that is later, until `webhook_max_attempts`; a subscription
whose `webhook_disable_after_failures` consecutive deliveries all failed is disabled.
Deliveries of a disabled subscription wait (nothing is lost) until it is re-enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from services.access import service as access_service
from services.access.principal import LOCAL_ADMIN, OPERATOR, Principal
from services.alerting.alerts import actions as alert_actions
from services.alerting.alerts.service import to_out as alert_out
from services.alerting.webhooks import formats
from services.alerting.webhooks.endpoints import EndpointGate, endpoint_of
from services.alerting.webhooks.formats import Format
from services.alerting.webhooks.network import TargetRefused, webhook_client
from services.alerting.webhooks.routing import (
    RETRY_AFTER_STATUSES,
    AlertFacts,
    Route,
    backoff_seconds,
    delivery_id,
    digest_delivery_id,
    goes_to_digest,
    is_deliverable,
    retry_after_seconds,
)
from services.alerting.webhooks.settings import WebhookSettings
from services.alerting.webhooks.targets import TargetPolicy
from services.casecost.pricing import LEVEL_RANK
from services.metrics import WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_DELIVERIES
from services.storage.engine import insert_ignoring
from services.storage.models import (
    AlertRecord,
    Identity,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDigestEntry,
    WebhookSubscription,
)

log = logging.getLogger(__name__)
FANOUT_BATCH = 500
USER_AGENT = "drgwatch-webhooks/1"
# what an attempt that got no HTTP answer records; a refused connection, a failed TLS
# handshake and a service that does not speak HTTP read alike, so that the log does not
# tell a closed port from an open one
REFUSED_TEXT = "not sent: the endpoint's address is not allowed for webhooks"
TIMEOUT_TEXT = "timeout: no answer in time"
NO_ANSWER_TEXT = "no answer: could not connect, or no valid HTTP answer"
# owners with no identity row: the embedded local admin and operator keys
BUILT_IN_OWNERS = {LOCAL_ADMIN.identity_id: LOCAL_ADMIN, OPERATOR.identity_id: OPERATOR}


@dataclass(frozen=True)
class DispatchSettings:
    poll_seconds: float
    idle_check_seconds: float
    timeout_seconds: float
    concurrency: int
    endpoint_concurrency: int
    breaker_failures: int
    breaker_seconds: float
    lease_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float
    max_attempts: int
    retry_after_max_seconds: float
    disable_after_failures: int
    digest_seconds: float
    targets: TargetPolicy

    @classmethod
    def of(cls, settings: WebhookSettings, *, targets: TargetPolicy) -> DispatchSettings:
        return cls(
            poll_seconds=settings.webhook_poll_seconds,
            idle_check_seconds=settings.webhook_idle_check_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
            endpoint_concurrency=min(
                settings.webhook_endpoint_concurrency, settings.webhook_concurrency
            ),
            breaker_failures=settings.webhook_breaker_failures,
            breaker_seconds=settings.webhook_breaker_seconds,
            lease_seconds=max(settings.webhook_lease_seconds, settings.webhook_timeout_seconds + 5),
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            max_attempts=settings.webhook_max_attempts,
            retry_after_max_seconds=settings.webhook_retry_after_max_seconds,
            disable_after_failures=settings.webhook_disable_after_failures,
            digest_seconds=settings.webhook_digest_seconds,
            targets=targets,
        )


@dataclass(frozen=True)
class Claimed:
    """A delivery this process holds the lease of, with where and how to send it."""

    seq: int
    id: str
    subscription_id: str
    kind: str
    alert_id: str | None  # None for a digest or a test message
    payload: str
    attempts: int
    url: str
    secret: str
    format: Format


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status code (and Retry-After), or an error."""

    status_code: int | None
    error: str | None
    retry_after: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    """Fan-out and sending, one tick at a time (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        settings: DispatchSettings,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._settings = settings
        self._stopping = asyncio.Event()
        # set by `wake` (the next tick is now, and sends without asking first) and `stop`
        self._woken = asyncio.Event()
        # whether the last look found anything to send, and when it looked (monotonic)
        self._active = False
        self._checked_at: float | None = None
        self._gate = EndpointGate(
            per_endpoint=settings.endpoint_concurrency,
            breaker_failures=settings.breaker_failures,
            breaker_seconds=settings.breaker_seconds,
        )
        self._sending: set[asyncio.Task[None]] = set()
        # the endpoint of each subscription seen lately, to leave held-back ones unclaimed
        self._subscriptions_of: dict[str, set[str]] = {}
        self._client = webhook_client(
            settings.targets,
            timeout_seconds=settings.timeout_seconds,
            max_connections=settings.concurrency,
            user_agent=USER_AGENT,
        )

    async def run(self) -> None:
        """Tick until stopped; a database outage is waited out, never fatal."""
        try:
            while not self._stopping.is_set():
                try:
                    await self.tick()
                except Exception as error:  # noqa: BLE001 - keep dispatching after any failure
                    log.warning("webhook dispatch failed (%s); retrying", type(error).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self._settings.poll_seconds)
        finally:
            await self._finish_sends()
            await self._client.aclose()

    @property
    def active(self) -> bool:
        """Whether its last look found something to send; while not, it asks the database
        only every `idle_check_seconds` whether there is."""
        return self._active

    def wake(self) -> None:
        """Something to send may have been made in this process (a subscription created
        or enabled, a test message or a retry queued): look now, not at the next check."""
        self._active = True
        self._checked_at = time.monotonic()
        self._woken.set()

    async def _finish_sends(self) -> None:
        """Let the sends in flight end (bounded by the timeout); cancel what is left (its
        lease expires and it is sent again)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=self._settings.timeout_seconds + 1)
        for task in set(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Let the sends in flight finish (bounded by the timeout), then end."""
        self._stopping.set()
        self._woken.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._settings.timeout_seconds + 2)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self) -> None:
        self._woken.clear()
        if not await self._has_work():
            return
        await self.fan_out(datetime.now(UTC))
        await self.send_due()

    async def _has_work(self) -> bool:
        """Whether a subscription is enabled or a test message waits, as last seen; asked
        again once `idle_check_seconds` have passed (either way: a last subscription
        disabled or deleted makes the dispatcher idle again). Retries are deliveries of
        enabled subscriptions; a disabled one's wait, unclaimed, until it is enabled."""
        now = time.monotonic()
        if self._checked_at is not None and now - self._checked_at < (
            self._settings.idle_check_seconds
        ):
            return self._active
        async with self._sessions() as db_session:
            enabled = select(WebhookSubscription.id).where(WebhookSubscription.enabled.is_(True))
            tests = select(WebhookDelivery.seq).where(
                WebhookDelivery.status == "pending", WebhookDelivery.kind == "test"
            )
            found = await db_session.scalar(select(or_(enabled.exists(), tests.exists())))
        # woken while asking: what was found may predate what woke it
        self._active = bool(found) or self._woken.is_set()
        self._checked_at = time.monotonic()
        return self._active

    # -- fan-out -----------------------------------------------------------------------

    async def fan_out(self, now: datetime) -> None:
        """New alerts into each enabled subscription's outbox; due digests closed."""
        async with self._sessions() as db_session, db_session.begin():
            last_seq = int(
                await db_session.scalar(select(func.coalesce(func.max(AlertRecord.seq), 0))) or 0
            )
            subscriptions = (
                await db_session.scalars(
                    select(WebhookSubscription)
                    .where(
                        WebhookSubscription.enabled.is_(True),
                        or_(
                            WebhookSubscription.after_seq < last_seq,
                            WebhookSubscription.digest_due_at <= now,
                        ),
                    )
                    .order_by(WebhookSubscription.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not subscriptions:
                return
            owners = await self._owners(db_session, {s.identity_id for s in subscriptions})
            for subscription in subscriptions:
                owner = owners.get(subscription.identity_id)
                if subscription.after_seq < last_seq:
                    await self._fan_out_one(db_session, subscription, owner, last_seq, now)
                if subscription.digest_due_at is not None and subscription.digest_due_at <= now:
                    await self._close_digest(db_session, subscription, now)

    async def _owners(
        self, db_session: AsyncSession, identity_ids: set[str]
    ) -> dict[str, Principal]:
        """The owners' scopes as they are now; a disabled or deleted owner is absent."""
        owners = {i: BUILT_IN_OWNERS[i] for i in identity_ids if i in BUILT_IN_OWNERS}
        identities = await db_session.scalars(
            select(Identity).where(Identity.id.in_(sorted(identity_ids)))
        )
        for identity in identities:
            if identity.disabled_at is None:
                owners[identity.id] = access_service.principal_of(identity)
        return owners

    async def _fan_out_one(
        self,
        db_session: AsyncSession,
        subscription: WebhookSubscription,
        owner: Principal | None,
        last_seq: int,
        now: datetime,
    ) -> None:
        if owner is None:
            # nobody may read these for this subscription: move on, send nothing
            subscription.after_seq = last_seq
            return
        route = Route(
            hospitals=frozenset(subscription.hospitals),
            departments=frozenset(subscription.departments),
            min_level=subscription.min_level,
            blue_digest=subscription.blue_digest,
            kinds=frozenset(subscription.kinds or ()),
        )
        floor = LEVEL_RANK[route.min_level]
        wanted = [level for level, rank in LEVEL_RANK.items() if rank >= floor]
        # a pre-filter in SQL; is_deliverable below is what decides
        query = (
            select(AlertRecord)
            .where(AlertRecord.seq > subscription.after_seq, AlertRecord.seq <= last_seq)
            .where(owner.scope_clause(AlertRecord.hospital_id, AlertRecord.department))
            .where(or_(AlertRecord.level.in_(wanted), AlertRecord.previous_level.in_(wanted)))
        )
        if route.hospitals:
            query = query.where(AlertRecord.hospital_id.in_(sorted(route.hospitals)))
        if route.departments:
            query = query.where(AlertRecord.department.in_(sorted(route.departments)))
        alerts = (
            await db_session.scalars(query.order_by(AlertRecord.seq).limit(FANOUT_BATCH))
        ).all()
        message_format = cast(Format, subscription.format)
        for alert in alerts:
            acknowledged = None
            if alert.transition == "escalated" and alert.kind != "target":
                acknowledged = await alert_actions.acknowledged_level(
                    db_session=db_session,
                    hospital_id=alert.hospital_id,
                    case_id=alert.case_id,
                    before_seq=alert.seq,
                )
            facts = AlertFacts(
                alert_id=alert.alert_id,
                hospital_id=alert.hospital_id,
                department=alert.department,
                level=alert.level,
                previous_level=alert.previous_level,
                transition=alert.transition,
                kind=alert.kind,
                acknowledged_level=acknowledged,
            )
            if not is_deliverable(facts, route, owner):
                continue
            if goes_to_digest(facts, route):
                await db_session.execute(
                    insert_ignoring(self._engine, WebhookDigestEntry).values(
                        subscription_id=subscription.id, alert_seq=alert.seq
                    )
                )
                if subscription.digest_due_at is None:
                    subscription.digest_due_at = now + timedelta(
                        seconds=self._settings.digest_seconds
                    )
                continue
            await self._enqueue(
                db_session,
                subscription_id=subscription.id,
                message_id=delivery_id(subscription.id, alert.alert_id),
                kind="alert",
                alert_id=alert.alert_id,
                payload=formats.alert_body(alert_out(alert), message_format),
                now=now,
            )
        full_batch = len(alerts) == FANOUT_BATCH
        subscription.after_seq = alerts[-1].seq if full_batch else last_seq

    async def _close_digest(
        self, db_session: AsyncSession, subscription: WebhookSubscription, now: datetime
    ) -> None:
        """Send what a digest subscription gathered as one message."""
        period_start = cast(datetime, subscription.digest_due_at) - timedelta(
            seconds=self._settings.digest_seconds
        )
        alerts = (
            await db_session.scalars(
                select(AlertRecord)
                .join(WebhookDigestEntry, WebhookDigestEntry.alert_seq == AlertRecord.seq)
                .where(WebhookDigestEntry.subscription_id == subscription.id)
                .order_by(AlertRecord.seq)
            )
        ).all()
        if alerts:
            await self._enqueue(
                db_session,
                subscription_id=subscription.id,
                message_id=digest_delivery_id(subscription.id, [a.seq for a in alerts]),
                kind="digest",
                alert_id=None,
                payload=formats.digest_body(
                    [alert_out(a) for a in alerts],
                    min(period_start, now),
                    now,
                    cast(Format, subscription.format),
                ),
                now=now,
            )
            await db_session.execute(
                delete(WebhookDigestEntry).where(
                    WebhookDigestEntry.subscription_id == subscription.id,
                    WebhookDigestEntry.alert_seq.in_([a.seq for a in alerts]),
                )
            )
        subscription.digest_due_at = None

    async def _enqueue(
        self,
        db_session: AsyncSession,
        *,
        subscription_id: str,
        message_id: str,
        kind: str,
        alert_id: str | None,
        payload: str,
        now: datetime,
    ) -> None:
        await db_session.execute(
            insert_ignoring(self._engine, WebhookDelivery).values(
                id=message_id,
                subscription_id=subscription_id,
                kind=kind,
                alert_id=alert_id,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    # -- sending -----------------------------------------------------------------------

    async def send_due(self) -> int:
        """Claim the due deliveries there is room for and start sending them; how many
        were started (their sends go on after this returns)."""
        room = self._settings.concurrency - len(self._sending)
        if room <= 0:
            return 0
        held_back = self._gate.held_back(time.monotonic())
        skipped = sorted(
            subscription_id
            for endpoint in held_back
            for subscription_id in self._subscriptions_of.get(endpoint, ())
        )
        claimed = await self._claim(datetime.now(UTC), limit=room, skipped=skipped)
        given_back = []
        for delivery in claimed:
            endpoint = endpoint_of(delivery.url)
            self._subscriptions_of.setdefault(endpoint, set()).add(delivery.subscription_id)
            if self._gate.admit(endpoint, time.monotonic()) != "send":
                given_back.append(delivery.seq)
                continue
            task = asyncio.create_task(self._deliver(delivery, endpoint))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        if given_back:
            await self._give_back(given_back)
        self._forget_idle_endpoints()
        return len(claimed) - len(given_back)

    async def wait_for_sends(self) -> None:
        """Until every send started so far has been recorded."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _forget_idle_endpoints(self) -> None:
        if len(self._subscriptions_of) > FANOUT_BATCH:
            held_back = self._gate.held_back(time.monotonic())
            for endpoint in [e for e in self._subscriptions_of if e not in held_back]:
                del self._subscriptions_of[endpoint]

    async def _give_back(self, seqs: list[int]) -> None:
        """Release the lease of deliveries claimed for an endpoint that cannot take them."""
        async with self._sessions() as db_session, db_session.begin():
            await db_session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.seq.in_(seqs), WebhookDelivery.status == "pending")
                .values(lease_until=None)
                .execution_options(synchronize_session=False)
            )

    async def _claim(self, now: datetime, *, limit: int, skipped: list[str]) -> list[Claimed]:
        due = (
            select(WebhookDelivery.seq)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                # a test message goes to a disabled endpoint too: to see it is back
                or_(WebhookSubscription.enabled.is_(True), WebhookDelivery.kind == "test"),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        if skipped:
            due = due.where(WebhookDelivery.subscription_id.not_in(skipped))
        lease_until = now + timedelta(seconds=self._settings.lease_seconds)
        async with self._sessions() as db_session, db_session.begin():
            rows = (
                await db_session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.seq.in_(due.scalar_subquery()))
                    .values(lease_until=lease_until)
                    .returning(
                        WebhookDelivery.seq,
                        WebhookDelivery.id,
                        WebhookDelivery.kind,
                        WebhookDelivery.alert_id,
                        WebhookDelivery.payload,
                        WebhookDelivery.attempts,
                        WebhookDelivery.subscription_id,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not rows:
                return []
            targets = {
                s.id: s
                for s in await db_session.scalars(
                    select(WebhookSubscription).where(
                        WebhookSubscription.id.in_({row.subscription_id for row in rows})
                    )
                )
            }
        return [
            Claimed(
                seq=row.seq,
                id=row.id,
                subscription_id=row.subscription_id,
                kind=row.kind,
                alert_id=row.alert_id,
                payload=row.payload,
                attempts=row.attempts,
                url=targets[row.subscription_id].url,
                secret=targets[row.subscription_id].secret,
                format=cast(Format, targets[row.subscription_id].format),
            )
            for row in rows
        ]

    async def _deliver(self, delivery: Claimed, endpoint: str) -> None:
        answer = Answer(None, TIMEOUT_TEXT, None, 0)
        try:
            answer = await self._post(delivery)
        except Exception as error:  # noqa: BLE001 - the lease expires and it is sent again
            log.warning(
                "webhook send %s failed: %s",
                delivery.id,
                type(error).__name__,
                extra={"alert_id": delivery.alert_id},
            )
            return
        finally:
            # no answer at all (a timeout, no connection) is what the breaker counts
            answered = answer.status_code is not None or answer.error == REFUSED_TEXT
            self._gate.finished(endpoint, answered=answered, now=time.monotonic())
        WEBHOOK_ATTEMPT_SECONDS.observe(answer.duration_ms / 1000)
        try:
            await self._record(delivery, answer)
        except Exception as error:  # noqa: BLE001 - the lease expires and it is sent again
            # the error's type only: a database error's text quotes the statement's values
            log.warning(
                "recording webhook attempt %s failed: %s",
                delivery.id,
                type(error).__name__,
                extra={"alert_id": delivery.alert_id},
            )

    async def _post(self, delivery: Claimed) -> Answer:
        """One signed POST: the stored bytes, a fresh timestamp and signature."""
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(delivery.secret).sign(
                delivery.id, sent_at, delivery.payload
            ),
        }
        started = time.perf_counter()
        try:
            # one deadline for the whole attempt: a read timeout alone restarts with every
            # byte, so an endpoint that trickles its answer would hold the send for ever
            async with asyncio.timeout(self._settings.timeout_seconds):
                response = await self._client.post(
                    delivery.url, content=delivery.payload.encode(), headers=headers
                )
        except TargetRefused:
            return Answer(None, REFUSED_TEXT, None, 0)
        except (httpx.TimeoutException, TimeoutError):
            return Answer(None, TIMEOUT_TEXT, None, _ms_since(started))
        except httpx.HTTPError:
            return Answer(None, NO_ANSWER_TEXT, None, _ms_since(started))
        duration_ms = _ms_since(started)
        error_text: str | None = None
        if 200 <= response.status_code < 300:
            error_text = formats.robot_refused(delivery.format, response.content)
        else:
            error_text = f"HTTP {response.status_code}"
        return Answer(
            response.status_code, error_text, response.headers.get("retry-after"), duration_ms
        )

    async def _record(self, delivery: Claimed, answer: Answer) -> None:
        now = datetime.now(UTC)
        settings = self._settings
        async with self._sessions() as db_session, db_session.begin():
            db_session.add(
                WebhookAttempt(
                    delivery_seq=delivery.seq,
                    attempted_at=now,
                    status_code=answer.status_code,
                    error=answer.error,
                    duration_ms=answer.duration_ms,
                )
            )
            record = await db_session.get(WebhookDelivery, delivery.seq, with_for_update=True)
            if record is None or record.status != "pending":
                return  # deleted or retried meanwhile
            subscription = await db_session.get(
                WebhookSubscription, record.subscription_id, with_for_update=True
            )
            if subscription is None:
                return
            # only alert and digest messages tell on the subscription's health
            counts = record.kind != "test"
            record.attempts += 1
            record.lease_until = None
            record.last_status_code = answer.status_code
            record.last_error = answer.error
            if answer.succeeded:
                record.status = "delivered"
                record.delivered_at = now
                if counts:
                    subscription.consecutive_failures = 0
                WEBHOOK_DELIVERIES.labels("delivered").inc()
                return
            if answer.status_code == 410:
                record.status = "failed"
                WEBHOOK_DELIVERIES.labels("gone").inc()
                if counts:
                    _disable(subscription, "the endpoint answered 410 Gone", now)
                return
            if record.attempts >= settings.max_attempts or record.kind == "test":
                record.status = "failed"
                WEBHOOK_DELIVERIES.labels("failed").inc()
                if counts:
                    subscription.consecutive_failures += 1
                    if subscription.consecutive_failures >= settings.disable_after_failures:
                        _disable(
                            subscription,
                            f"{subscription.consecutive_failures} deliveries in a row failed"
                            f" after {settings.max_attempts} attempts each",
                            now,
                        )
                return
            delay = backoff_seconds(
                record.attempts,
                base=settings.backoff_base_seconds,
                cap=settings.backoff_max_seconds,
                rng=random.SystemRandom(),
            )
            if answer.status_code in RETRY_AFTER_STATUSES:
                asked = retry_after_seconds(answer.retry_after, now)
                if asked is not None:
                    delay = max(delay, min(asked, settings.retry_after_max_seconds))
            record.next_attempt_at = now + timedelta(seconds=delay)
            WEBHOOK_DELIVERIES.labels("retrying").inc()


def _disable(subscription: WebhookSubscription, reason: str, now: datetime) -> None:
    if subscription.enabled:
        subscription.enabled = False
        subscription.disabled_reason = reason
        subscription.disabled_at = now
        subscription.updated_at = now
        log.warning("webhook subscription %s disabled: %s", subscription.id, reason)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
