"""Settings of an API process: the common ones, its keys, and webhook delivery (which
runs inside each API process)."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from services.alerting.webhooks.settings import WebhookSettings
from services.settings import CommonSettings

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "default", "drgwatch"}


class ApiSettings(CommonSettings, WebhookSettings):
    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    api_keys: str = ""  # comma-separated operator keys; required in production mode
    webhooks: bool = True  # send webhooks from this process

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
