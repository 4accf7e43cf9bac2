"""Persistence: the async engine and sessions, the table models, the migrations, the credential vault, plugins' record store, idempotency records and private file modes. It imports only `core`.

Outside this wing, code imports from ``gateway.storage`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.storage.database import Database
from gateway.storage.idempotency import run_idempotent
from gateway.storage.key_fingerprint import SecretKeyMismatch, check_secret_key
from gateway.storage.migrate import current_revision, head_revision, upgrade
from gateway.storage.models import (
    Account,
    AccountMetricSnapshot,
    AccountMetricsState,
    AdAccount,
    AdInsightRow,
    AdObject,
    AdSpendCap,
    ApiKey,
    ApprovalEntry,
    Attempt,
    AuditEntry,
    Campaign,
    Connection,
    Job,
    JobEvent,
    MediaAsset,
    Organization,
    OrganizationEvent,
    Post,
    PostingQueue,
    QueuedTarget,
    Recurrence,
    Target,
    TargetMetrics,
    TargetMetricSnapshot,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WorkerHeartbeat,
)
from gateway.storage.private_files import DIRECTORY_MODE, make_private_directories, private_opener, restrict
from gateway.storage.provider_store import DatabaseProviderStore
from gateway.storage.reachability import DatabaseUnreachable, mask_passwords, masked_url
from gateway.storage.sqlite_driver import ALONE, DEFERRED
from gateway.storage.staging import answered_ids, every_write_in_context, name_answered, on_commit, stage_finisher, stage_rows
from gateway.storage.vault import VaultError, decrypt, encrypt
from gateway.storage.worker_heartbeats import DUE_STATUSES, MISSED_BEATS, Heartbeat, WorkerWatch, heartbeat_seconds

__all__ = [
    "Account",
    "AccountMetricSnapshot",
    "AccountMetricsState",
    "AdAccount",
    "AdInsightRow",
    "AdObject",
    "AdSpendCap",
    "ALONE",
    "answered_ids",
    "ApiKey",
    "ApprovalEntry",
    "Attempt",
    "AuditEntry",
    "Campaign",
    "check_secret_key",
    "Connection",
    "current_revision",
    "Database",
    "DatabaseProviderStore",
    "DatabaseUnreachable",
    "decrypt",
    "DEFERRED",
    "DIRECTORY_MODE",
    "DUE_STATUSES",
    "encrypt",
    "every_write_in_context",
    "head_revision",
    "Heartbeat",
    "heartbeat_seconds",
    "Job",
    "JobEvent",
    "make_private_directories",
    "mask_passwords",
    "masked_url",
    "MediaAsset",
    "MISSED_BEATS",
    "name_answered",
    "on_commit",
    "Organization",
    "OrganizationEvent",
    "Post",
    "PostingQueue",
    "private_opener",
    "QueuedTarget",
    "Recurrence",
    "restrict",
    "run_idempotent",
    "SecretKeyMismatch",
    "stage_finisher",
    "stage_rows",
    "Target",
    "TargetMetrics",
    "TargetMetricSnapshot",
    "upgrade",
    "VaultError",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
    "WorkerWatch",
]
