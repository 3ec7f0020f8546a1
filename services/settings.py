"""Settings shared by every drgwatch service, read from DRGWATCH_* environment variables.

Each entrypoint builds its settings once and passes them on; nothing reads the
environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "default", "drgwatch"}


class StackSettings(BaseSettings):
    """Where the database and the broker are, and how topics are named."""

    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    mode: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("./var")
    database_url: str = ""  # empty: SQLite file in data_dir
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "drgwatch"
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    topic_replication: int = Field(default=1, ge=1, le=5)
    api_keys: str = ""  # comma-separated; required in production mode
    # webhooks (live push): the dispatcher runs inside each API process; see
    # services/api/subscriptions/dispatcher.py for how these interact
    webhooks: bool = True
    webhook_poll_seconds: float = Field(default=0.25, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
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

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> StackSettings:
        if self.mode == "production":
            keys = self.api_key_list
            if not keys or any(key.lower() in PLACEHOLDER_SECRETS or len(key) < 16 for key in keys):
                raise ValueError(
                    "production mode needs DRGWATCH_API_KEYS: comma-separated keys of at "
                    "least 16 characters, none of them a placeholder"
                )
            if not self.database_url:
                raise ValueError("production mode needs DRGWATCH_DATABASE_URL")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'drgwatch.db').resolve()}"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}-events"

    @property
    def alerts_topic(self) -> str:
        return f"{self.topic_prefix}-alerts"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}-dead-letters"

    @property
    def worker_app_id(self) -> str:
        return f"{self.topic_prefix}-worker"

    @property
    def case_changelog_topic(self) -> str:
        return f"{self.worker_app_id}-cases-changelog"
