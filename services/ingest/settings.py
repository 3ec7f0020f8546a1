"""Settings every ingest path shares (the HTTP API and the Kafka intake)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ingest.plausibility import TimeBounds


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRGWATCH_", frozen=True, extra="ignore")

    # ingest refuses an event dated more than this after it was received (clock skew)
    event_future_skew_seconds: int = Field(default=300, ge=0, le=86_400)
    # and accepts, with a warning and a metric, one dated more than this before it
    event_backdated_warning_days: int = Field(default=90, ge=1, le=36_500)
    # HL7 v2 facility profiles (a directory of YAML files, or one file); unset: the
    # profiles drgwatch ships (services/ingest/hl7/profiles/)
    hl7_profiles: Path | None = None

    @property
    def time_bounds(self) -> TimeBounds:
        return TimeBounds(
            future_skew=timedelta(seconds=self.event_future_skew_seconds),
            backdated_after=timedelta(days=self.event_backdated_warning_days),
        )
