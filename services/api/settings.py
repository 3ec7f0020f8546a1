"""Settings of an API process: the common ones, its keys, and webhook delivery (which
runs inside each API process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.access import key_strength
from services.access.sessions import Lifetimes
from services.alerting.webhooks.settings import WebhookSettings
from services.api.guard import split_host
from services.ingest.settings import IngestSettings
from services.settings import CommonSettings


class ApiSettings(CommonSettings, WebhookSettings, IngestSettings):
    # a refusal must not echo its input: that holds the keys and the database password
    model_config = SettingsConfigDict(
        env_prefix="DRGWATCH_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    api_keys: str = ""  # comma-separated operator keys; required in production mode
    webhooks: bool = True  # send webhooks from this process
    # host names (`name`, `name:port`, `*.suffix`) this service answers to, comma-separated;
    # empty: loopback on its own port in embedded mode, any host in production
    allowed_hosts: str = ""
    # wrong API keys per client address: a burst, then this many a minute (429 beyond)
    auth_failures_burst: int = Field(default=10, ge=1)
    auth_failures_per_minute: float = Field(default=10.0, gt=0)
    # people's sign-in sessions: idle timeout (sliding) and absolute lifetime
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=30 * 24)
    # failed sign-ins before each further one is slowed (429 with Retry-After, doubling):
    # per name, and per client address (higher: a hospital's staff share a NAT address)
    sign_in_failures_per_name: int = Field(default=5, ge=1, le=1000)
    sign_in_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    # live streams one identity may hold open at once, per API process
    streams_per_identity: int = Field(default=8, ge=1, le=1000)
    # `drgwatch api` also takes HL7 v2 over MLLP on this port (its --host; loopback in
    # embedded mode); unset: no MLLP listener (`drgwatch up` has its own --mllp-port)
    mllp_port: int | None = Field(default=None, ge=0, le=65_535)
    # the site's FHIR mapping for POST /v1/fhir (hospitals, departments, categories);
    # unset: the shipped services/ingest/fhir/default-mapping.yaml
    fhir_mapping: Path | None = None
    # POST /v1/events: the postings that arrive together are recorded in one ledger
    # transaction (group commit) of at most this many events (a posting is never split)
    ingest_group_events: int = Field(default=2000, ge=1, le=100_000)
    # /metrics counts open cases by level and the ledger's unpublished events at most this
    # often (services/api/gauges.py)
    pipeline_metrics_seconds: float = Field(default=15.0, ge=0)

    @property
    def session_lifetimes(self) -> Lifetimes:
        return Lifetimes(
            idle=timedelta(minutes=self.session_idle_minutes),
            absolute=timedelta(hours=self.session_absolute_hours),
        )

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @property
    def allowed_host_list(self) -> list[str]:
        return [host.strip() for host in self.allowed_hosts.split(",") if host.strip()]

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_parse(cls, value: str) -> str:
        for entry in (host.strip() for host in value.split(",")):
            if entry and entry != "*":
                try:
                    split_host(entry)
                except ValueError:
                    raise ValueError(f"DRGWATCH_ALLOWED_HOSTS: not a host: {entry!r}") from None
        return value

    @model_validator(mode="after")
    def _production_needs_strong_keys(self) -> ApiSettings:
        if self.mode != "production":
            return self
        keys = self.api_key_list
        if not keys:
            raise ValueError(
                "production mode needs DRGWATCH_API_KEYS: comma-separated operator keys, e.g."
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        for number, key in enumerate(keys, start=1):
            weakness = key_strength.weakness(key)
            if weakness is not None:
                # the key itself never goes into the message: it would reach the logs
                raise ValueError(
                    f"DRGWATCH_API_KEYS: key {number} is too weak ({weakness}); operator keys"
                    f" need at least {key_strength.MIN_LENGTH} characters and"
                    f" {key_strength.MIN_BITS:.0f} bits of entropy, e.g."
                    " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return self
