"""Settings of an API process: the common ones, its keys, and webhook delivery (which
runs inside each API process)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.alerting.webhooks.settings import WebhookSettings
from services.ingest.plausibility import TimeBounds
from services.settings import CommonSettings

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "default", "drgwatch"}


class ApiSettings(CommonSettings, WebhookSettings):
    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    api_keys: str = ""  # comma-separated operator keys; required in production mode
    webhooks: bool = True  # send webhooks from this process
    # ingest refuses an event dated more than this after it was received (clock skew)
    event_future_skew_seconds: int = Field(default=300, ge=0, le=86_400)
    # and accepts, with a warning and a metric, one dated more than this before it
    event_backdated_warning_days: int = Field(default=90, ge=1, le=36_500)

    @property
    def time_bounds(self) -> TimeBounds:
        return TimeBounds(
            future_skew=timedelta(seconds=self.event_future_skew_seconds),
            backdated_after=timedelta(days=self.event_backdated_warning_days),
        )

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @model_validator(mode="after")
    def _production_needs_keys(self) -> ApiSettings:
        if self.mode == "production":
            keys = self.api_key_list
            if not keys or any(key.lower() in PLACEHOLDER_SECRETS or len(key) < 16 for key in keys):
                raise ValueError(
                    "production mode needs DRGWATCH_API_KEYS: comma-separated keys of at "
                    "least 16 characters, none of them a placeholder"
                )
        return self
