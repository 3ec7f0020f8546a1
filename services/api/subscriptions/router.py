"""Webhook subscriptions: manage them, send a test message, see and retry deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.access.principal import Principal
from services.alerting.webhooks import service as subscription_service
from services.alerting.webhooks.dispatcher import Dispatcher
from services.alerting.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
)
from services.alerting.webhooks.targets import TargetPolicy
from services.api.deps import SessionDep, require
from services.api.params import Cursor

router = APIRouter(tags=["subscriptions"])
SubscriptionId = Annotated[str, Path(max_length=40, pattern=r"^sub_[0-9a-f]{1,36}$")]
DeliveryId = Annotated[str, Path(max_length=40, pattern=r"^msg_[0-9a-f]{1,36}$")]
Manager = Annotated[Principal, Depends(require("subscriptions:manage"))]


def _targets(request: Request) -> TargetPolicy:
    targets: TargetPolicy = request.app.state.webhook_targets
    return targets


def _wake_sender(request: Request) -> None:
    """Tell this process's webhook sender there may be something to send now (an idle
    sender otherwise looks only every `webhook_idle_check_seconds`)."""
    dispatcher: Dispatcher | None = request.app.state.dispatcher
    if dispatcher is not None:
        dispatcher.wake()


@router.post(
    "/v1/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    responses={409: {"description": "the caller has as many subscriptions as it may"}},
)
async def create_subscription(
    subscription_in: SubscriptionIn, request: Request, caller: Manager, db_session: SessionDep
) -> SubscriptionCreated:
    """Subscribe an endpoint to alerts; the answer holds the signing secret, once."""
    created = await subscription_service.create(
        db_session=db_session,
        owner=caller,
        subscription_in=subscription_in,
        targets=_targets(request),
        most=request.app.state.settings.webhook_subscriptions_per_identity,
        now=datetime.now(UTC),
    )
    await db_session.commit()
    _wake_sender(request)
    return created


@router.get("/v1/subscriptions", response_model=SubscriptionList)
async def list_subscriptions(
    caller: Manager,
    db_session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> SubscriptionList:
    """The caller's subscriptions (every one, for an admin)."""
    return await subscription_service.list_subscriptions(
        db_session=db_session, owner=caller, limit=limit, cursor=cursor
    )


@router.get("/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def get_subscription(
    subscription_id: SubscriptionId, caller: Manager, db_session: SessionDep
) -> SubscriptionOut:
    record = await subscription_service.get(
        db_session=db_session, owner=caller, subscription_id=subscription_id
    )
    return subscription_service.to_out(record)


@router.patch("/v1/subscriptions/{subscription_id}", response_model=SubscriptionOut)
async def update_subscription(
    subscription_id: SubscriptionId,
    patch: SubscriptionPatch,
    request: Request,
    caller: Manager,
    db_session: SessionDep,
) -> SubscriptionOut:
    """Change filters, format or URL; `"enabled": true` re-enables and resets failures."""
    updated = await subscription_service.update(
        db_session=db_session,
        owner=caller,
        subscription_id=subscription_id,
        patch=patch,
        targets=_targets(request),
        now=datetime.now(UTC),
    )
    await db_session.commit()
    _wake_sender(request)
    return updated


@router.delete("/v1/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: SubscriptionId, caller: Manager, db_session: SessionDep
) -> Response:
    await subscription_service.delete(
        db_session=db_session, owner=caller, subscription_id=subscription_id
    )
    await db_session.commit()
    return Response(status_code=204)


@router.post(
    "/v1/subscriptions/{subscription_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    responses={429: {"description": "too many test messages; retry after Retry-After"}},
)
async def send_test(
    subscription_id: SubscriptionId, request: Request, caller: Manager, db_session: SessionDep
) -> DeliveryOut:
    """Queue a signed test message (one attempt; see it under the deliveries); a few a
    minute per subscription (429 with Retry-After beyond)."""
    delivery = await subscription_service.enqueue_test(
        db_session=db_session,
        owner=caller,
        subscription_id=subscription_id,
        per_minute=request.app.state.settings.webhook_tests_per_minute,
        now=datetime.now(UTC),
    )
    await db_session.commit()
    _wake_sender(request)
    return delivery


@router.get("/v1/subscriptions/{subscription_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    subscription_id: SubscriptionId,
    caller: Manager,
    db_session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> DeliveryList:
    """Deliveries, newest first, each with its attempts."""
    return await subscription_service.list_deliveries(
        db_session=db_session,
        owner=caller,
        subscription_id=subscription_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
)
async def retry_delivery(
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
    request: Request,
    caller: Manager,
    db_session: SessionDep,
) -> DeliveryOut:
    """Send a delivered or failed message again: same webhook-id, same bytes."""
    delivery = await subscription_service.retry_delivery(
        db_session=db_session,
        owner=caller,
        subscription_id=subscription_id,
        delivery_id=delivery_id,
        now=datetime.now(UTC),
    )
    await db_session.commit()
    _wake_sender(request)
    return delivery
