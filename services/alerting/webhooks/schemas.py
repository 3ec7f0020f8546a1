"""Webhook subscriptions and their deliveries on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.alerting.alerts.schemas import ALERT_KINDS, AlertKind
from services.alerting.webhooks.formats import Format
from services.alerting.webhooks.routing import MinLevel

Code = Annotated[str, Field(min_length=1, max_length=64)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt filter must not widen delivery

    url: str = Field(max_length=2000, description="http(s) endpoint; https in production")
    format: Format = "standard"
    hospitals: list[Code] = Field(default_factory=list, max_length=200)
    departments: list[Code] = Field(default_factory=list, max_length=200)
    min_level: MinLevel | None = Field(
        default=None,
        description="default by the owner's role: department_head blue, insurance_office"
        " yellow, others blue",
    )
    blue_digest: bool = False
    kinds: list[AlertKind] = Field(
        default_factory=list,
        max_length=len(ALERT_KINDS),
        description="alert kinds to send (level, forecast, target, rule); empty: every kind",
    )

    @field_validator("hospitals", "departments", "kinds")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted(set(values))


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    format: Format | None = None
    hospitals: list[Code] | None = Field(default=None, max_length=200)
    departments: list[Code] | None = Field(default=None, max_length=200)
    min_level: MinLevel | None = None
    blue_digest: bool | None = None
    kinds: list[AlertKind] | None = Field(default=None, max_length=len(ALERT_KINDS))
    enabled: bool | None = Field(default=None, description="true re-enables and resets failures")

    @field_validator("hospitals", "departments", "kinds")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted(set(values))


class SubscriptionOut(BaseModel):
    id: str
    owner_identity_id: str
    url: str
    format: Format
    hospitals: list[str]
    departments: list[str]
    min_level: MinLevel
    blue_digest: bool
    kinds: list[AlertKind]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="whsec_ signing secret; shown only here, keep it")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str = Field(description="the webhook-id header; the same on every attempt")
    subscription_id: str
    kind: Literal["alert", "digest", "test"]
    alert_id: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: Any
    attempt_log: list[AttemptOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
