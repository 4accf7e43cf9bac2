"""The tables, as SQLAlchemy 2 declarative models (DESIGN.md §3).

Status columns are plain strings checked by the services rather than database enums, so adding a
status is a code change and not a migration on every backend.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.core.clock import utcnow
from gateway.storage.types import UTCDateTime

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(40)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Organization(Timestamps, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|suspended|archived
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kill_switch: Mapped[bool] = mapped_column(default=False)


class ApiKey(Timestamps, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # The public part of the secret, used to find the row; the rest is only ever stored hashed.
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_by_key_id: Mapped[str | None] = mapped_column(ID, ForeignKey("api_keys.id"))
    rotated_from_id: Mapped[str | None] = mapped_column(ID, ForeignKey("api_keys.id"))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    disabled: Mapped[bool] = mapped_column(default=False)  # the per-key kill switch
    last_used_at: Mapped[datetime | None]


class Account(Timestamps, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("organization_id", "provider", "external_id"),
        Index("ix_accounts_token_expiry", "status", "token_expires_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64), index=True)
    external_id: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str] = mapped_column(String(255), default="")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    account_type: Mapped[str] = mapped_column(String(40), default="user")
    # active|token_expired|disconnected|rate_limited
    status: Mapped[str] = mapped_column(String(20), default="active")
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM ciphertext, never plain
    token_expires_at: Mapped[datetime | None]
    # Bumped whenever the credentials are replaced: a token refresh writes its tokens only if the
    # version is still the one it started from, so it never overwrites newer credentials.
    credentials_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Held by the one process refreshing the token; the others wait for its outcome instead of
    # spending the (often single-use) refresh token a second time.
    refresh_lease_until: Mapped[datetime | None]
    rate_limited_until: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    disconnected_at: Mapped[datetime | None]


class Connection(Timestamps, Base):
    """An OAuth handshake in flight; it becomes an Account when the callback succeeds."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    state_hash: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    pkce_verifier: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted
    redirect_uri: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|succeeded|failed
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(ID, ForeignKey("accounts.id"))
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class Post(Timestamps, Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_org_created", "organization_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    campaign_id: Mapped[str | None] = mapped_column(ID, index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    # media ids, per-provider text overrides, per-target settings, thread parts
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # none|pending|approved|rejected
    approval_status: Mapped[str] = mapped_column(String(20), default="none")
    created_by_key_id: Mapped[str | None] = mapped_column(ID, ForeignKey("api_keys.id"))
    deleted_at: Mapped[datetime | None]


class Target(Timestamps, Base):
    """One post going to one account; the unit the scheduler claims and publishes."""

    __tablename__ = "targets"
    __table_args__ = (
        UniqueConstraint("post_id", "account_id"),
        Index("ix_targets_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    # draft|scheduled|publishing|published|retry_pending|failed|canceled|unconfirmed
    status: Mapped[str] = mapped_column(String(20), default="draft")
    publish_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    attempt_count: Mapped[int] = mapped_column(default=0)
    job_id: Mapped[str | None] = mapped_column(ID, ForeignKey("jobs.id"), index=True)
    platform_post_id: Mapped[str | None] = mapped_column(String(255))
    platform_url: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]


class Attempt(Base):
    """One provider call for a target, written before the call starts."""

    __tablename__ = "attempts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_id: Mapped[str] = mapped_column(ID, ForeignKey("targets.id"), index=True)
    number: Mapped[int]
    worker_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # success|rate_limited|transient|auth_expired|rejected|unconfirmed|lease_expired|error
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None]


class MediaAsset(Timestamps, Base):
    __tablename__ = "media_assets"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # image|video|gif|document
    mime_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration_ms: Mapped[int | None]
    alt_text: Mapped[str] = mapped_column(Text, default="")
    storage_path: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    # SHA-256 (hex) of the token in the public URL platforms pull the file from; the token itself
    # is never stored (gateway.content.media_tokens derives it when a URL is needed).
    access_token_hash: Mapped[str] = mapped_column(String(64))
    deleted_at: Mapped[datetime | None]


class Job(Timestamps, Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_org_created", "organization_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(40))  # publish|bulk_schedule|metrics_refresh|ads_sync|ads_write
    # queued|running|succeeded|failed|partial|canceled
    status: Mapped[str] = mapped_column(String(20), default="queued")
    subject_id: Mapped[str | None] = mapped_column(ID, index=True)
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobEvent(Base):
    """An event of a job, numbered per job so a subscriber can resume after the last it saw."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ID, ForeignKey("jobs.id"))
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrganizationEvent(Base):
    """An event of an organization that belongs to no job (an account connected, a token expired).

    Stored like job events so that every process's relay carries it to that process's
    subscribers: the process that noticed the change is seldom the one a dashboard is connected to.
    """

    __tablename__ = "org_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str | None] = mapped_column(ID)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("organization_id", "operation", "key"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    operation: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="in_progress")  # in_progress|completed
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    actor_key_id: Mapped[str | None] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(80))
    subject_id: Mapped[str | None] = mapped_column(ID)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderRecord(Timestamps, Base):
    """A JSON record a provider keeps in the gateway's database (``ProviderContext.store``).

    Scoped by provider and account so no plugin reads another's data; ``account_scope`` is the
    account id, or "" for records a provider keeps outside any account.
    """

    __tablename__ = "provider_records"
    __table_args__ = (UniqueConstraint("provider", "account_scope", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    account_scope: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InstallationSetting(Base):
    """A fact about the installation that every process must agree on, such as which secret key it
    was first used with (``gateway.storage.key_fingerprint``). One row per name."""

    __tablename__ = "installation_settings"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerHeartbeat(Base):
    """The last sign of life of one running scheduler (``gateway.storage.worker_heartbeats``)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- ads (issue 16): money is an integer in the currency's ISO 4217 minor unit, never a float ---


class AdAccount(Timestamps, Base):
    """An ad account a connected identity reaches: a Meta ``act_…``, a TikTok advertiser, an Apple org."""

    __tablename__ = "ad_accounts"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"))
    provider: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|disconnected
    synced_at: Mapped[datetime | None]


class AdObject(Timestamps, Base):
    """A campaign, ad set or ad as the platform last accepted it (``level`` says which).

    ``drift`` holds what a sync found changed on the platform since, field by field
    (``{"name": {"ours": …, "platform": …}}``): recorded for a person to see, never written over ours.
    """

    __tablename__ = "ad_objects"
    __table_args__ = (
        UniqueConstraint("ad_account_id", "level", "external_id"),
        Index("ix_ad_objects_org_level_created", "organization_id", "level", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    ad_account_id: Mapped[str] = mapped_column(ID, ForeignKey("ad_accounts.id"), index=True)
    level: Mapped[str] = mapped_column(String(10))  # campaign|ad_set|ad
    parent_id: Mapped[str | None] = mapped_column(ID, index=True)
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(20))  # active|paused|archived|deleted
    effective_status: Mapped[str | None] = mapped_column(String(80))
    objective: Mapped[str | None] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(3))
    daily_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    bid_minor: Mapped[int | None] = mapped_column(BigInteger)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    drift: Mapped[dict[str, Any]] = mapped_column(default=dict)
    synced_at: Mapped[datetime | None]


class AdInsightRow(Base):
    """One day of one ad object's delivery; NULL where the platform does not report a figure."""

    __tablename__ = "ad_insights"
    __table_args__ = (UniqueConstraint("ad_object_id", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    ad_object_id: Mapped[str] = mapped_column(ID, ForeignKey("ad_objects.id"))
    day: Mapped[date] = mapped_column(Date)
    impressions: Mapped[int | None] = mapped_column(BigInteger)
    clicks: Mapped[int | None] = mapped_column(BigInteger)
    spend_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reach: Mapped[int | None] = mapped_column(BigInteger)
    conversions: Mapped[int | None] = mapped_column(BigInteger)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdSpendCap(Base):
    """An organization's limit on the daily budgets it runs in one currency (``BUDGET_CAP_EXCEEDED``)."""

    __tablename__ = "ad_spend_caps"

    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    daily_cap_minor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
