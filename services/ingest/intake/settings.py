"""Settings of the intake process (`drgwatch intake`, or the intake of `drgwatch up`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from services.ingest.intake.records import ALL_HOSPITALS, HospitalScope
from services.ingest.settings import IngestSettings
from services.settings import CommonSettings


class IntakeSettings(CommonSettings, IngestSettings):
    # the hospitals whose events the intake takes, comma-separated, or `*` for every
    # hospital; unset: every hospital in embedded mode, a refusal to start in production
    intake_hospitals: str = ""
    # records fetched, answered and committed (their offsets) together
    intake_batch_records: int = Field(default=500, ge=1, le=5000)
    # events recorded in one database transaction: a batch of larger records is taken
    # in several (a record, or an HL7 message, is never split)
    intake_transaction_events: int = Field(default=500, ge=1, le=100_000)
    # serve the intake's Prometheus metrics on this port; unset: none
    intake_metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    intake_metrics_host: str = "127.0.0.1"

    @model_validator(mode="after")
    def _production_names_its_hospitals(self) -> IntakeSettings:
        if self.mode == "production" and not self.intake_hospitals.strip():
            raise ValueError(
                "production mode needs DRGWATCH_INTAKE_HOSPITALS (hospital ids, or * for all)"
            )
        HospitalScope.parse(self.intake_hospitals or ALL_HOSPITALS)
        return self

    @property
    def hospital_scope(self) -> HospitalScope:
        return HospitalScope.parse(self.intake_hospitals or ALL_HOSPITALS)
