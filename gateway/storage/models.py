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
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.core import utcnow
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
    __table_args__ = (Index("ix_organizations_parent_created", "parent_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|suspended|archived
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kill_switch: Mapped[bool] = mapped_column(default=False)


class ApiKey(Timestamps, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_org_created", "organization_id", "created_at", "id"),)

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
        Index("ix_accounts_org_created", "organization_id", "created_at", "id"),
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
    __table_args__ = (
        Index("ix_posts_org_created", "organization_id", "created_at", "id"),
        # posts(filter: {status}) is one range of this index, however rare the status (issue 21).
        Index("ix_posts_org_status_created", "organization_id", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    campaign_id: Mapped[str | None] = mapped_column(ID, index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    # media ids, per-provider text overrides, per-target settings, thread parts
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # none|not_required|required|pending|approved|rejected (gateway.approvals)
    approval_status: Mapped[str] = mapped_column(String(20), default="none")
    approval_stage: Mapped[str | None] = mapped_column(String(20))  # review|client while pending
    created_by_key_id: Mapped[str | None] = mapped_column(ID, ForeignKey("api_keys.id"))
    deleted_at: Mapped[datetime | None]
    # Derived from the targets (gateway.content.posts.STATUS_RULES) and written by a trigger on
    # targets in the transaction that changes them (gateway.content.post_status): never set here.
    status: Mapped[str] = mapped_column(String(24), default="draft", server_default="draft")


class Target(Timestamps, Base):
    """One post going to one account; the unit the scheduler claims and publishes."""

    __tablename__ = "targets"
    __table_args__ = (
        UniqueConstraint("post_id", "account_id"),
        Index("ix_targets_due", "status", "next_attempt_at"),
        # The metrics collector finds recently published targets by this (gateway.metrics).
        Index("ix_targets_published", "status", "published_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    # draft|scheduled|publishing|processing|published|retry_pending|failed|canceled|unconfirmed|missed
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
    # A publish the platform accepted but is still processing (``providers.Processing``): what
    # ``poll`` needs to find it again, a word for people, whether the post is already public,
    # and when the gateway gives up. ``next_attempt_at`` is the next check. Cleared when the
    # target leaves the processing path, so a retry starts with a fresh upload.
    processing_handle: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))  # None is SQL NULL, which the claim tests
    processing_stage: Mapped[str | None] = mapped_column(String(40))
    processing_published: Mapped[bool] = mapped_column(default=False, server_default=false())
    processing_deadline: Mapped[datetime | None]


class Attempt(Base):
    """One provider call for a target, written before the call starts."""

    __tablename__ = "attempts"
    # Provider quotas count the calls that went out in their window (gateway.engine.quotas).
    __table_args__ = (Index("ix_attempts_started", "started_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_id: Mapped[str] = mapped_column(ID, ForeignKey("targets.id"), index=True)
    number: Mapped[int]
    worker_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the call was: publish (a post sent), poll (a check on a processing publish), reconcile
    # (asking whether a lost call's post appeared), delete. Provider quotas count publishes only.
    kind: Mapped[str] = mapped_column(String(10), default="publish", server_default="publish")
    finished_at: Mapped[datetime | None]
    # success|rate_limited|transient|auth_expired|rejected|unconfirmed|lease_expired|error
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None]


class MediaAsset(Timestamps, Base):
    __tablename__ = "media_assets"
    __table_args__ = (Index("ix_media_assets_org_created", "organization_id", "created_at", "id"),)

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
    """One mutation, as ``gateway.audit`` records it: who, what, on which objects, and how it ended."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # The organization acted in (a child, for a parent's key acting through X-Socialgate-Org).
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    actor_key_id: Mapped[str | None] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(80))  # the mutation's name, e.g. createPost
    subject_id: Mapped[str | None] = mapped_column(ID)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The organization the calling key belongs to.
    actor_organization_id: Mapped[str | None] = mapped_column(ID)
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok|user_errors|error
    object_ids: Mapped[list[Any]] = mapped_column(default=list)
    error_codes: Mapped[list[Any]] = mapped_column(default=list)


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


class ApprovalEntry(Base):
    """One step of a post's approval thread: submitted, approved, rejected or commented (gateway.approvals)."""

    __tablename__ = "approval_entries"
    __table_args__ = (Index("ix_approval_entries_org_created", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # submitted|approved|rejected|commented|reopened
    stage: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    author_key_id: Mapped[str | None] = mapped_column(ID)
    # "key" for an API key, "preview" for a client acting through a preview link
    author_kind: Mapped[str] = mapped_column(String(20), default="key")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostingQueue(Timestamps, Base):
    """Weekly posting slots of one account, or of the organization (``account_id`` empty) as the default."""

    __tablename__ = "posting_queues"
    __table_args__ = (UniqueConstraint("organization_id", "account_scope"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    account_scope: Mapped[str] = mapped_column(String(40))  # the account id, or "" for the org default
    timezone: Mapped[str] = mapped_column(String(64))
    slots: Mapped[list[Any]] = mapped_column(default=list)  # [{"dayOfWeek": 0-6 (Monday 0), "time": "HH:MM"}]
    max_per_slot: Mapped[int] = mapped_column(default=1)


class QueuedTarget(Base):
    """A target placed in its account's queue: which slot it holds, so a slot change can move it."""

    __tablename__ = "queued_targets"

    target_id: Mapped[str] = mapped_column(ID, ForeignKey("targets.id"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"), index=True)
    slot_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
# --- metrics (gateway.metrics) -----------------------------------------------------------------


class PostFigures:
    """One nullable column per figure of the SDK's vocabulary (``providers.metrics.POST_FIGURES``).

    NULL is "the platform did not report it", never zero; platform-only figures go in ``extra``.
    """

    views: Mapped[int | None] = mapped_column(BigInteger)
    reach: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    shares: Mapped[int | None] = mapped_column(BigInteger)
    reposts: Mapped[int | None] = mapped_column(BigInteger)
    quotes: Mapped[int | None] = mapped_column(BigInteger)
    saves: Mapped[int | None] = mapped_column(BigInteger)
    clicks: Mapped[int | None] = mapped_column(BigInteger)
    video_watch_seconds: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TargetMetrics(PostFigures, Base):
    """A published target's latest figures and when they are read next: one row per target.

    The snapshots keep the history; this row answers "latest", the rollups and the collector's
    "what is due" without scanning it. ``next_refresh_at`` is NULL once the cadence has ended.
    """

    __tablename__ = "target_metrics"
    __table_args__ = (
        # post_id too: a window's distinct posts are counted from the index alone.
        Index("ix_target_metrics_org_published", "organization_id", "published_at", "post_id"),
        Index("ix_target_metrics_due", "next_refresh_at"),
    )

    target_id: Mapped[str] = mapped_column(ID, ForeignKey("targets.id"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str | None] = mapped_column(ID)
    published_at: Mapped[datetime]
    next_refresh_at: Mapped[datetime | None]
    refreshed_at: Mapped[datetime | None]


class TargetMetricSnapshot(PostFigures, Base):
    """A target's figures at one moment; append-only, thinned to one a day after a week."""

    __tablename__ = "target_metric_snapshots"
    __table_args__ = (
        Index("ix_target_metric_snapshots_series", "target_id", "captured_at"),
        Index("ix_target_metric_snapshots_org", "organization_id", "captured_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    target_id: Mapped[str] = mapped_column(ID, ForeignKey("targets.id"))
    captured_at: Mapped[datetime]
    day: Mapped[int]  # UTC days since 1970-01-01: the same grouping on every backend for downsampling


class AccountMetricSnapshot(Base):
    """An account's totals (followers, following, posts) at one moment; append-only like the above."""

    __tablename__ = "account_metric_snapshots"
    __table_args__ = (Index("ix_account_metric_snapshots_series", "account_id", "captured_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"))
    captured_at: Mapped[datetime]
    day: Mapped[int]
    followers: Mapped[int | None] = mapped_column(BigInteger)
    following: Mapped[int | None] = mapped_column(BigInteger)
    posts: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AccountMetricsState(Base):
    """Per account: when its totals are read next, and until when its metric reads are paused.

    Kept apart from ``accounts.rate_limited_until`` on purpose: a platform refusing metric reads
    must not hold back the account's publishing.
    """

    __tablename__ = "account_metrics_state"

    account_id: Mapped[str] = mapped_column(ID, ForeignKey("accounts.id"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    paused_until: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(64))
    next_account_refresh_at: Mapped[datetime | None]
class WebhookEndpoint(Timestamps, Base):
    """A URL that receives an organization's events, signed per Standard Webhooks (``gateway.webhooks``).

    The signing secret is sealed with the runtime's key: it must be read back to sign, so it
    cannot be hashed like an API key. During a rotation the previous secret signs too, until
    ``previous_secret_expires_at``.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(String(20), default="own")  # own|all_children
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(40))  # manual|gone|failing
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class WebhookDelivery(Timestamps, Base):
    """One event owed to one endpoint: the durable outbox row, written with the event it carries.

    Its id is the ``webhook-id`` header, the same on every attempt, so a receiver can drop a
    repeat. A worker leases it (``lease_owner``/``lease_expires_at``) while it calls.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ID, ForeignKey("webhook_endpoints.id"))
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the envelope {type, timestamp, data}
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|delivering|delivered|failed
    attempt_count: Mapped[int] = mapped_column(default=0)
    ladder_step: Mapped[int] = mapped_column(default=0)  # attempts since it was created or replayed
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP call of a delivery: when, how long, what came back (at most 4 KB of it)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ID, ForeignKey("webhook_deliveries.id"), index=True)
    number: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int]
    response_excerpt: Mapped[str | None] = mapped_column(Text)
class Campaign(Timestamps, Base):
    """A named group of posts planned together (``gateway.campaigns``).

    While ``status`` is ``paused`` the engine claims none of its posts' targets; ``late_policy``
    says what resuming does with a target whose time passed meanwhile: ``publish`` it at once,
    or mark it ``missed``.
    """

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_org_created", "organization_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # draft|active|paused|completed|archived
    status: Mapped[str] = mapped_column(String(20), default="draft")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    tags: Mapped[list[Any]] = mapped_column(default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    late_policy: Mapped[str] = mapped_column(String(20), default="publish")  # publish|miss


class Recurrence(Timestamps, Base):
    """A recurring (evergreen) post: a series of copies of one post (``gateway.campaigns.recurrence``).

    Occurrence k is due at ``anchor_at`` + k·``every_days`` days on the wall clock of
    ``timezone``; only the latest occurrence (``last_post_id``) is ever scheduled, and the next
    one is made when it ends, at the first occurrence time still ahead, so a backlog never fires
    a burst.
    """

    __tablename__ = "recurrences"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the series' first post
    organization_id: Mapped[str] = mapped_column(ID, ForeignKey("organizations.id"), index=True)
    every_days: Mapped[int]
    count: Mapped[int | None]  # occurrences in all, the first included
    until: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64))
    anchor_at: Mapped[datetime]
    last_post_id: Mapped[str] = mapped_column(ID)
    last_index: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)  # active|finished|stopped
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
