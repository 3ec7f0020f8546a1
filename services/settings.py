"""Settings shared by every drgwatch process, read from DRGWATCH_* environment variables.

Each entrypoint builds the settings of its process kind once and passes them on;
nothing else reads the environment.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.casecost.pricing import DEFAULT_TIMEZONE


class CommonSettings(BaseSettings):
    """What every process kind needs: where the database and the broker are, how topics
    are named, and the hospital's time zone. Each kind extends it: ApiSettings
    (services/api/settings.py), WorkerSettings (services/alerting/settings.py)."""

    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    mode: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("./var")
    database_url: str = ""  # empty: SQLite file in data_dir
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "drgwatch"
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    topic_replication: int = Field(default=1, ge=1, le=5)
    # replicas that must have a record before a producer with acks=all is answered;
    # unset: a majority of topic_replication (2 of 3). Set on the topics at creation.
    topic_min_insync_replicas: int | None = Field(default=None, ge=1, le=5)
    # how long the event, alert, dead-letter and intake topics keep records (the case
    # changelog is compacted instead: it keeps each case's latest state)
    topic_retention_hours: int = Field(default=168, ge=1)
    # a hospital's day is its local calendar day ("today", pricing days, weeks)
    timezone: str = DEFAULT_TIMEZONE
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # unset: one JSON object a line in production mode, lines for people in embedded mode
    log_format: Literal["json", "text"] | None = None
    # how long a stopping process may take to finish what it has in hand (requests in
    # flight, the batch being applied, the intake record) before it exits regardless
    shutdown_seconds: float = Field(default=20.0, gt=0, le=600)
    # the monitoring rule files (a directory of YAML/JSON files, or one file); unset: the
    # rules drgwatch ships (services/reference/rules/)
    rules_dir: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
        return name

    @property
    def resolved_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.mode == "production" else "text"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self) -> date:
        """The hospital's local date now."""
        return datetime.now(self.zone).date()

    @model_validator(mode="after")
    def _min_insync_within_replication(self) -> CommonSettings:
        if (self.topic_min_insync_replicas or 0) > self.topic_replication:
            raise ValueError(
                "DRGWATCH_TOPIC_MIN_INSYNC_REPLICAS cannot exceed DRGWATCH_TOPIC_REPLICATION"
                " (no write could succeed)"
            )
        return self

    @property
    def min_insync_replicas(self) -> int:
        """Set on every topic: a majority of the replicas unless configured."""
        if self.topic_min_insync_replicas is not None:
            return self.topic_min_insync_replicas
        return self.topic_replication // 2 + 1

    @model_validator(mode="after")
    def _production_needs_a_database(self) -> CommonSettings:
        if self.mode == "production" and not self.database_url:
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
    def intake_topic(self) -> str:
        """Where integration engines produce contract v1 events (README "Kafka intake")."""
        return f"{self.topic_prefix}-intake"

    @property
    def intake_results_topic(self) -> str:
        return f"{self.topic_prefix}-intake-results"

    @property
    def intake_group(self) -> str:
        return f"{self.topic_prefix}-intake"

    @property
    def worker_app_id(self) -> str:
        return f"{self.topic_prefix}-worker"

    @property
    def case_changelog_topic(self) -> str:
        return f"{self.worker_app_id}-cases-changelog"
