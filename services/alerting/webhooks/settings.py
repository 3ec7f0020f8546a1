"""Settings of webhook delivery (DRGWATCH_WEBHOOK_*); see dispatcher.py for how they act."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.alerting.webhooks.targets import check_allowed_targets


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    webhook_poll_seconds: float = Field(default=0.25, gt=0, le=60)
    # with no enabled subscription and no test message waiting, the sender only asks
    # whether there is one, this often (this process's subscription routes wake it at once)
    webhook_idle_check_seconds: float = Field(default=2.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # messages in flight to one endpoint (scheme, host, port) at once
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=256)
    # attempts in a row without an answer that pause an endpoint, and for how long
    webhook_breaker_failures: int = Field(default=3, ge=1)
    webhook_breaker_seconds: float = Field(default=60.0, gt=0)
    # test messages per subscription a minute; subscriptions one identity may own
    webhook_tests_per_minute: int = Field(default=3, ge=1)
    webhook_subscriptions_per_identity: int = Field(default=25, ge=1)
    # a claimed delivery is another process's to retry only after this (> the timeout)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    # backoff: jittered in the upper half of base x 2^(attempt-1), capped; with the
    # defaults the 15 attempts of one delivery span 4 to 8 hours
    webhook_backoff_base_seconds: float = Field(default=30.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_attempts: int = Field(default=15, ge=1, le=100)
    # a Retry-After further out than this is not waited for (the backoff cap applies)
    webhook_retry_after_max_seconds: float = Field(default=86400.0, gt=0)
    # consecutive deliveries that exhaust their attempts before the subscription is disabled
    webhook_disable_after_failures: int = Field(default=3, ge=1)
    webhook_digest_seconds: float = Field(default=3600.0, gt=0)
    # where webhooks may go beyond the defaults (targets.py): comma-separated networks
    # (10.20.0.0/16, 192.168.5.7) and/or `public`
    webhook_allowed_targets: str = ""

    @field_validator("webhook_allowed_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        return check_allowed_targets(value)
