"""Database tables shared by ingest, the worker's projector and the API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

BigId = BigInteger().with_variant(Integer, "sqlite")


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; text on SQLite, which would otherwise store a float."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 20, scale: int = 4) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every backend: stored in UTC, read back with tzinfo=UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    """Every accepted event, durable before 202; the log can be replayed from here."""

    __tablename__ = "ingest_ledger"
    __table_args__ = (
        UniqueConstraint("hospital_id", "event_id", name="uq_ledger_event"),
        UniqueConstraint("hospital_id", "case_id", "case_seq", name="uq_ledger_case_seq"),
        Index("ix_ledger_unpublished", "published", "seq"),
        # the entries ledgered before cases were numbered (none in a ledger begun since):
        # a restore from snapshots finds them without reading the whole ledger
        Index(
            "ix_ledger_unnumbered",
            "seq",
            postgresql_where=text("case_seq IS NULL"),
            sqlite_where=text("case_seq IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hospital_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    # 1, 2, 3, ... per case in the order the events became durable: the worker applies
    # each case's events in this order whatever order the stream delivers them in
    case_seq: Mapped[int | None] = mapped_column(BigId, nullable=True)


class CaseSequence(Base):
    """The last ledger sequence number given to each case (its row lock orders writers)."""

    __tablename__ = "case_sequences"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigId)


class CaseSnapshot(Base):
    """A case's state as the worker's table last held it (its changelog value, as the
    projector read it) and the per-case ledger sequence it applies next: after the broker
    is lost, the new changelog starts from these, and only the ledger entries at or past
    `next_sequence` are published again."""

    __tablename__ = "case_snapshots"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_sequence: Mapped[int] = mapped_column(BigId)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class DeadLetter(Base):
    """An event that could not be processed, kept with its reason."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_hospital", "hospital_id", "id"),
        Index("uq_dead_letters_source_key", "source_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(16))  # ingest | stream
    hospital_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # where the refusal came from when that can be read again (the Kafka intake's
    # `topic/partition/offset#n`): kept once, however often it is read
    source_key: Mapped[str | None] = mapped_column(String(300), nullable=True)


class CaseRecord(Base):
    """The queryable projection of a case's live state (written in batches by the worker)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_department", "hospital_id", "department", "case_id"),
        Index("ix_cases_level", "hospital_id", "level", "case_id"),
        # indicators and targets read the cases discharged in a period
        Index("ix_cases_discharged", "hospital_id", "discharged_at"),
    )

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    drg_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    drg_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    insurance_scheme: Mapped[str | None] = mapped_column(String(32), nullable=True)
    standard_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    total_cost: Mapped[Decimal] = mapped_column(ExactDecimal(18, 2))
    ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal(12, 4), nullable=True)
    level: Mapped[str] = mapped_column(String(16))
    ratio_flag: Mapped[str | None] = mapped_column(String(8), nullable=True)
    cost_by_category: Mapped[dict[str, str]] = mapped_column(JSON)
    top_contributors: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    admitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    discharged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # the hospital's UTC offset as the admission carried it: days are counted locally
    utc_offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    avg_los_days: Mapped[Decimal | None] = mapped_column(ExactDecimal(8, 1), nullable=True)
    events_applied: Mapped[int] = mapped_column(Integer)
    last_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # the projection to discharge (services/casecost/forecast.py)
    projected_total: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    projected_ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal(12, 4), nullable=True)
    # {local day: net cost} and {orderer ("" for none): net cost}; None for rows projected
    # before they were kept
    cost_by_day: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    cost_by_orderer: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # local days of admission and discharge as days since 1970-01-01 (by the case's own UTC
    # offset, as los_days counts), so that a stay's days over its average sort in SQL
    admitted_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    discharged_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AlertRecord(Base):
    """One record per level change of a case; alert_id makes replays idempotent."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_case", "hospital_id", "case_id", "seq"),
        Index("ix_alerts_department", "hospital_id", "department", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(36), unique=True)
    hospital_id: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    drg_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    level: Mapped[str] = mapped_column(String(16))
    previous_level: Mapped[str] = mapped_column(String(16))
    transition: Mapped[str] = mapped_column(String(16))
    total_cost: Mapped[Decimal] = mapped_column(ExactDecimal(18, 2))
    standard_cost: Mapped[Decimal] = mapped_column(ExactDecimal(18, 2))
    ratio: Mapped[Decimal] = mapped_column(ExactDecimal(12, 4))
    event_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime())
    top_contributors: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    # level: the case changed level; forecast: its projection to discharge crossed red
    kind: Mapped[str] = mapped_column(String(16), server_default="level")
    projected_total: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    projected_ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal(12, 4), nullable=True)
    # target: a department's pace against its target crossed a threshold; case_id is empty,
    # the period and measure name the target
    target_period: Mapped[str | None] = mapped_column(String(7), nullable=True)
    target_measure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # rule: a monitoring rule found something on a case (or a department: case_id empty);
    # the rule and version, the finding's period, what it found and the sentences saying so
    rule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rule_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule_period: Mapped[str | None] = mapped_column(String(80), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    text_zh: Mapped[str | None] = mapped_column(Text, nullable=True)
    text_en: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlertAction(Base):
    """Something a person did to an alert (acknowledge, resolve, review): who, when, why.

    Kept apart from `alerts`, which only the worker's projector writes. `step` numbers an
    alert's actions 1, 2, 3, ...; its uniqueness refuses the second of two concurrent
    actions on the same status.
    """

    __tablename__ = "alert_actions"
    __table_args__ = (
        UniqueConstraint("alert_id", "step", name="uq_alert_actions_step"),
        Index("ix_alert_actions_case", "hospital_id", "case_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alerts.alert_id", ondelete="CASCADE")
    )
    step: Mapped[int] = mapped_column(Integer)
    hospital_id: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # acknowledge | resolve | review
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # resolve
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # review
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(40))
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    acted_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CatalogueRecord(Base):
    """A DRG catalogue version. Never deleted: a withdrawn one keeps its row and groups
    (prices nothing) so that what priced a case can still be shown."""

    __tablename__ = "drg_catalogues"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    hospital_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    base_rates: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # the shipped sample: any real catalogue in force outranks it
    sample: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # how it was imported: full | amend | replace, and the catalogue it was based on
    import_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    based_on_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DrgGroupRecord(Base):
    __tablename__ = "drg_groups"

    catalogue_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("drg_catalogues.id", ondelete="CASCADE"), primary_key=True
    )
    drg_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # the English name beside `name` (which is in the catalogue's own language), if given
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    weight: Mapped[Decimal] = mapped_column(ExactDecimal(10, 4))
    avg_los_days: Mapped[Decimal | None] = mapped_column(ExactDecimal(8, 1), nullable=True)
    standard_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    # the region's mean cost per case, and the group's own high-/low-ratio limits
    mean_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    high_ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal(8, 4), nullable=True)
    low_ratio: Mapped[Decimal | None] = mapped_column(ExactDecimal(8, 4), nullable=True)


class ChargemasterRecord(Base):
    """A chargemaster version (收费目录): never changed once stored; a later import is a new
    version, and the one valid on a day prices that day's pre-checks."""

    __tablename__ = "chargemasters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    # None: every hospital (a region's price list)
    hospital_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the shipped sample: any real chargemaster valid on a day outranks it
    sample: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class ChargemasterItemRecord(Base):
    __tablename__ = "chargemaster_items"

    chargemaster_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("chargemasters.id", ondelete="CASCADE"), primary_key=True
    )
    item_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    category: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal(16, 4))
    # items of one group stand for one another (same category and unit)
    equivalence_group: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ThresholdRecord(Base):
    """Level thresholds for a hospital and DRG; '*' stands for any."""

    __tablename__ = "alert_thresholds"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    drg_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    blue: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    yellow: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    red: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReferenceVersion(Base):
    """Bumped whenever catalogues or thresholds change, so workers know to reload."""

    __tablename__ = "reference_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ready: Mapped[bool] = mapped_column(Boolean)
    partitions: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Identity(Base):
    """Someone (or some system) that calls the API, with a role and a scope."""

    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    # hospital ids, or ["*"] for every hospital (a provincial insurance office, an admin)
    hospitals: Mapped[list[str]] = mapped_column(JSON)
    # department codes (department heads only; empty for every other role)
    departments: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Argon2id hash (PHC string) of a person's password; None: signs in with keys only
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SignInSession(Base):
    """A person's signed-in browser session; only the SHA-256 digest of the cookie's
    random token is kept, so a database dump signs nobody in."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    identity_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # the earlier of last seen + idle timeout and created + absolute lifetime
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ApiKeyRecord(Base):
    """An API key of an identity; only the SHA-256 digest of the key is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebhookSubscription(Base):
    """An endpoint that receives alerts (issue 5, live push), owned by an identity.

    The owner's scope is re-read from `identities` at every fan-out, so a narrowed or
    disabled identity stops receiving; the embedded local admin ("local") has no row.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_owner", "identity_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    identity_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    # the whsec_ secret itself (it is needed to sign every message)
    secret: Mapped[str] = mapped_column(String(80))
    format: Mapped[str] = mapped_column(String(16))  # standard | wecom | dingtalk
    # filters, always intersected with the owner's scope; empty means "all in scope"
    hospitals: Mapped[list[str]] = mapped_column(JSON)
    departments: Mapped[list[str]] = mapped_column(JSON)
    min_level: Mapped[str] = mapped_column(String(16))
    blue_digest: Mapped[bool] = mapped_column(Boolean)
    # alert kinds sent (level, forecast, target, rule); None or empty: every kind
    kinds: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # the fan-out cursor: alerts up to this sequence have been considered
    after_seq: Mapped[int] = mapped_column(BigId)
    # when the blue digest gathering now closes (None: nothing gathered)
    digest_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """The outbox: one message to one subscription, resent with the same id and bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # the webhook-id header: deterministic per subscription and alert
    id: Mapped[str] = mapped_column(String(64), unique=True)
    subscription_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))  # alert | digest | test
    alert_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the answer's status, or the error class."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_seq", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_deliveries.seq", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class WebhookDigestEntry(Base):
    """A blue alert gathered for a subscription's next digest message."""

    __tablename__ = "webhook_digest_entries"

    subscription_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    alert_seq: Mapped[int] = mapped_column(BigId, primary_key=True)


class DepartmentRecord(Base):
    """A department's names; the codes come from the cases, the names from the office."""

    __tablename__ = "departments"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str | None] = mapped_column(String(200), nullable=True)
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DepartmentTarget(Base):
    """A department's targets for a year (`2026`) or a month (`2026-12`), as the
    insurance office set them last; a null measure has no target."""

    __tablename__ = "department_targets"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    cases: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_per_case: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    total_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 2), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TargetWatch(Base):
    """Where a department's ceiling measure stands against its target for a period: the
    level of its last alert and how many it has raised (the next alert's id derives
    from that count). Written only by the worker's target watch."""

    __tablename__ = "target_watches"

    hospital_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    measure: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    ratio: Mapped[Decimal] = mapped_column(ExactDecimal(12, 4))
    alerts_raised: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RuleVersionRecord(Base):
    """Every version of every monitoring rule, as validated (the rule's JSON), with where
    it came from (`file:<name>` or `api`), who made it and when."""

    __tablename__ = "rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version", name="uq_rule_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(300))
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class RuleHead(Base):
    """Each rule's newest version, and whether it is in force: a rule last written by a
    file stops being in force when no rule file holds it any more."""

    __tablename__ = "rule_heads"

    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    in_force: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RuleSwitchRecord(Base):
    """A rule switched off (or on) for a hospital, or one department of it (`department`
    '' for the whole hospital); every change is a row, the newest per rule, hospital and
    department is in force, and `enabled` null clears the switch."""

    __tablename__ = "rule_switches"
    __table_args__ = (Index("ix_rule_switches_key", "rule_id", "hospital_id", "department", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    hospital_id: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class RuleGeneration(Base):
    """Bumped (row 1) with every change of the rule registry, first thing in its
    transaction: writers queue behind its row lock, and workers poll it to reload."""

    __tablename__ = "rule_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigId)


class IngestSeal(Base):
    """The key of the seal on every events-topic record (row 1; services/wire.py
    EventSeal): made once, read at start by the processes that publish events and by the
    worker, which applies only records sealed with it."""

    __tablename__ = "ingest_seal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
