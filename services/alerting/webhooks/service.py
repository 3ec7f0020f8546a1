"""Webhook subscriptions of an owner, their deliveries, test messages and manual retries.

A caller sees their own subscriptions (an admin sees all); another's answers 404.
Functions do not commit: the request does.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import secrets
import socket
from datetime import datetime, timedelta

import httpx
import orjson
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.exceptions import (
    DeliveryNotFound,
    DeliveryPending,
    InvalidSubscription,
    SubscriptionNotFound,
    TestsTooFrequent,
    TooManySubscriptions,
)
from services.alerting.webhooks import formats
from services.alerting.webhooks.routing import DEFAULT_MIN_LEVEL
from services.alerting.webhooks.schemas import (
    AttemptOut,
    DeliveryList,
    DeliveryOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
)
from services.alerting.webhooks.targets import Address, TargetPolicy, parse_address
from services.storage.models import (
    AlertRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from services.storage.pagination import decode_cursor, decode_int_cursor, encode_cursor

SECRET_BYTES = 24
TEST_WINDOW = timedelta(minutes=1)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def to_out(record: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=record.id,
        owner_identity_id=record.identity_id,
        url=record.url,
        format=record.format,
        hospitals=record.hospitals,
        departments=record.departments,
        min_level=record.min_level,
        blue_digest=record.blue_digest,
        kinds=record.kinds or [],
        enabled=record.enabled,
        disabled_reason=record.disabled_reason,
        disabled_at=record.disabled_at,
        consecutive_failures=record.consecutive_failures,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def check_url(url: str, *, targets: TargetPolicy) -> str:
    """An absolute http(s) URL with a host; https in production mode; and when the host
    is an address (in any notation) or `localhost`, one that webhooks may go to.

    A host name is checked where it matters, at every send, on the addresses it
    resolves to then (network.py); refusing the plain cases here tells the owner at once.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidSubscription("url: not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidSubscription("url: must be an absolute http or https URL")
    if targets.production and parsed.scheme != "https":
        raise InvalidSubscription("url: must use https in production mode")
    for address in _literal_addresses(parsed.host):
        reason = targets.refusal(address)
        if reason is not None:
            raise InvalidSubscription(f"url: {reason}")
    return url


def _literal_addresses(host: str) -> list[Address]:
    """The addresses a host names without asking DNS: an IP address in any notation the
    system accepts (`2130706433`, `0x7f000001`, `127.1`), or localhost's."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        answers = socket.getaddrinfo(
            host.strip("[]"), None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError, ValueError):
        return []
    return [parse_address(str(answer[4][0])) for answer in answers]


def check_filters(owner: Principal, hospitals: list[str], departments: list[str]) -> None:
    """Filters may only narrow the owner's scope, so say so when they try to widen it."""
    outside = [hospital for hospital in hospitals if not owner.sees_hospital(hospital)]
    if outside:
        raise InvalidSubscription(f"hospitals: outside your scope: {', '.join(outside)}")
    if owner.role == "department_head":
        foreign = [code for code in departments if code not in owner.departments]
        if foreign:
            raise InvalidSubscription(f"departments: outside your scope: {', '.join(foreign)}")


async def create(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_in: SubscriptionIn,
    targets: TargetPolicy,
    most: int,
    now: datetime,
) -> SubscriptionCreated:
    """A new enabled subscription; it receives alerts raised from now on. An owner has
    at most `most` (each is fanned out to and sent from the shared sender)."""
    check_url(subscription_in.url, targets=targets)
    check_filters(owner, subscription_in.hospitals, subscription_in.departments)
    owned = await db_session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.identity_id == owner.identity_id)
    )
    if int(owned or 0) >= most:
        raise TooManySubscriptions(
            f"an identity may have at most {most} subscriptions; delete one first"
        )
    last_seq = await db_session.scalar(select(func.coalesce(func.max(AlertRecord.seq), 0)))
    record = WebhookSubscription(
        id=f"sub_{secrets.token_hex(12)}",
        identity_id=owner.identity_id,
        url=subscription_in.url,
        secret=new_secret(),
        format=subscription_in.format,
        hospitals=subscription_in.hospitals,
        departments=subscription_in.departments,
        min_level=subscription_in.min_level or DEFAULT_MIN_LEVEL[owner.role],
        blue_digest=subscription_in.blue_digest,
        kinds=list(subscription_in.kinds),
        enabled=True,
        consecutive_failures=0,
        after_seq=int(last_seq or 0),
        created_at=now,
        updated_at=now,
    )
    db_session.add(record)
    await db_session.flush()
    return SubscriptionCreated(**to_out(record).model_dump(), secret=record.secret)


async def get(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    for_update: bool = False,
) -> WebhookSubscription:
    """The caller's subscription (any, for an admin); 404 otherwise."""
    record = await db_session.get(WebhookSubscription, subscription_id, with_for_update=for_update)
    if record is None or (owner.role != "admin" and record.identity_id != owner.identity_id):
        raise SubscriptionNotFound(f"subscription {subscription_id} not found")
    return record


async def list_subscriptions(
    *, db_session: AsyncSession, owner: Principal, limit: int, cursor: str | None
) -> SubscriptionList:
    """The caller's subscriptions (all, for an admin), oldest first."""
    query = select(WebhookSubscription)
    if owner.role != "admin":
        query = query.where(WebhookSubscription.identity_id == owner.identity_id)
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(WebhookSubscription.id > str(after[0]))
    rows = (await db_session.scalars(query.order_by(WebhookSubscription.id).limit(limit + 1))).all()
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return SubscriptionList(items=[to_out(row) for row in rows[:limit]], next_cursor=next_cursor)


async def update(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    patch: SubscriptionPatch,
    targets: TargetPolicy,
    now: datetime,
) -> SubscriptionOut:
    """Change settings; `enabled: true` re-enables and forgets past failures."""
    record = await get(db_session=db_session, owner=owner, subscription_id=subscription_id)
    if patch.url is not None:
        record.url = check_url(patch.url, targets=targets)
    hospitals = record.hospitals if patch.hospitals is None else patch.hospitals
    departments = record.departments if patch.departments is None else patch.departments
    check_filters(owner, hospitals, departments)
    record.hospitals, record.departments = hospitals, departments
    if patch.format is not None:
        record.format = patch.format
    if patch.min_level is not None:
        record.min_level = patch.min_level
    if patch.kinds is not None:
        record.kinds = list(patch.kinds)
    if patch.blue_digest is not None:
        if record.blue_digest and not patch.blue_digest and record.digest_due_at is not None:
            record.digest_due_at = now  # what was gathered goes out at once
        record.blue_digest = patch.blue_digest
    if patch.enabled is True and not record.enabled:
        record.enabled = True
        record.disabled_reason = None
        record.disabled_at = None
        record.consecutive_failures = 0
    elif patch.enabled is False and record.enabled:
        record.enabled = False
        record.disabled_reason = "disabled by its owner"
        record.disabled_at = now
    record.updated_at = now
    await db_session.flush()
    return to_out(record)


async def delete(*, db_session: AsyncSession, owner: Principal, subscription_id: str) -> None:
    """Remove a subscription with its pending deliveries and their history.

    Deliveries go first, then the subscription: the order in which the sender locks
    them while recording an attempt (deleting the subscription first, whose cascade
    then reaches the deliveries, deadlocked against a send in flight).
    """
    record = await get(db_session=db_session, owner=owner, subscription_id=subscription_id)
    await db_session.execute(
        sql_delete(WebhookDelivery).where(WebhookDelivery.subscription_id == record.id)
    )
    await db_session.delete(record)
    await db_session.flush()


async def enqueue_test(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    per_minute: int,
    now: datetime,
) -> DeliveryOut:
    """A signed test message, sent by the dispatcher even to a disabled subscription;
    at most `per_minute` a subscription (counted in the outbox, so across processes)."""
    # the row lock makes concurrent requests count one after another
    record = await get(
        db_session=db_session, owner=owner, subscription_id=subscription_id, for_update=True
    )
    recent = (
        await db_session.scalars(
            select(WebhookDelivery.created_at)
            .where(
                WebhookDelivery.subscription_id == record.id,
                WebhookDelivery.kind == "test",
                WebhookDelivery.created_at > now - TEST_WINDOW,
            )
            .order_by(WebhookDelivery.created_at)
        )
    ).all()
    if len(recent) >= per_minute:
        free_at = recent[len(recent) - per_minute] + TEST_WINDOW
        raise TestsTooFrequent(
            f"at most {per_minute} test messages a minute per subscription",
            retry_after=math.ceil((free_at - now).total_seconds()),
        )
    delivery = WebhookDelivery(
        id=f"msg_{secrets.token_hex(16)}",
        subscription_id=record.id,
        kind="test",
        alert_id=None,
        payload=formats.ping_body(record.id, now, record.format),  # type: ignore[arg-type]
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db_session.add(delivery)
    await db_session.flush()
    return delivery_out(delivery, [])


async def list_deliveries(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> DeliveryList:
    """A subscription's deliveries, newest first, each with its attempts."""
    await get(db_session=db_session, owner=owner, subscription_id=subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    before = decode_int_cursor(cursor)
    if before is not None:
        query = query.where(WebhookDelivery.seq < before)
    rows = (
        await db_session.scalars(query.order_by(WebhookDelivery.seq.desc()).limit(limit + 1))
    ).all()
    page = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {row.seq: [] for row in page}
    if page:
        for attempt in await db_session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_seq.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        ):
            attempts[attempt.delivery_seq].append(attempt)
    next_cursor = encode_cursor([rows[limit - 1].seq]) if len(rows) > limit else None
    return DeliveryList(
        items=[delivery_out(row, attempts[row.seq]) for row in page], next_cursor=next_cursor
    )


async def retry_delivery(
    *,
    db_session: AsyncSession,
    owner: Principal,
    subscription_id: str,
    delivery_id: str,
    now: datetime,
) -> DeliveryOut:
    """Send a failed (or delivered) message again, same id and bytes, with fresh attempts."""
    await get(db_session=db_session, owner=owner, subscription_id=subscription_id)
    delivery = await db_session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id
        )
    )
    if delivery is None:
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    if delivery.status == "pending":
        raise DeliveryPending(f"delivery {delivery_id} is pending already")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_until = None
    await db_session.flush()
    attempts = (
        await db_session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_seq == delivery.seq)
            .order_by(WebhookAttempt.id)
        )
    ).all()
    return delivery_out(delivery, list(attempts))


def delivery_out(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        subscription_id=delivery.subscription_id,
        kind=delivery.kind,
        alert_id=delivery.alert_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        payload=orjson.loads(delivery.payload),
        attempt_log=[
            AttemptOut(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            for attempt in attempts
        ],
    )
