"""The Prometheus instruments and the one-line hooks the counting places call.

Why hooks instead of instruments in each wing: the names, labels and buckets of every series live
in one module, so a dashboard author reads one file, and label values that come from clients
(GraphQL operation names) are bounded here before they can blow up the series count.

When ``PROMETHEUS_MULTIPROC_DIR`` is set before the process starts, prometheus_client writes
every value to a file in that directory instead of process memory, and ``exposition`` sums the
files of every process: gauges say how they combine across processes (``multiprocess_mode``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "socialgate"
# Client-chosen operation names become label values: only names shaped like GraphQL names, and
# only the first MAX_OPERATION_NAMES distinct ones of a process; the rest count as "other".
MAX_OPERATION_NAMES = 200
OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
# GraphQL error codes a request can end with (DESIGN §6); any other code counts as "error".
REQUEST_OUTCOMES = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "INTERNAL", "BAD_USER_INPUT"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)

GRAPHQL_REQUESTS = Counter(
    "graphql_requests", "GraphQL queries and mutations over HTTP, by operation name and outcome (ok or an error code).",
    ["operation", "outcome"], namespace=NAMESPACE,
)
GRAPHQL_LATENCY = Histogram(
    "graphql_request_duration_seconds", "Time to execute a GraphQL query or mutation, by operation name.",
    ["operation"], namespace=NAMESPACE, buckets=LATENCY_BUCKETS,
)
PUBLISH_ATTEMPTS = Counter(
    "publish_attempts", "Provider publish calls, by provider and outcome (success, rate_limited, transient, rejected, unconfirmed…).",
    ["provider", "outcome"], namespace=NAMESPACE,
)
JOB_DURATION = Histogram(
    "job_duration_seconds", "From a job's start (its first claim) to its end, by kind and final status.",
    ["kind", "status"], namespace=NAMESPACE, buckets=JOB_BUCKETS,
)
SUBSCRIPTIONS_OPEN = Gauge(
    "subscriptions_open", "GraphQL subscriptions open now, by field.", ["field"], namespace=NAMESPACE, multiprocess_mode="livesum",
)
EVENTS_RELAYED = Counter(
    "events_relayed", "Stored events another process wrote, carried to this process's subscribers, by kind.",
    ["kind"], namespace=NAMESPACE,
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_delivery_attempts", "Webhook calls made, by outcome (delivered or failed).", ["outcome"], namespace=NAMESPACE,
)
DB_CONNECTIONS_IN_USE = Gauge(
    "db_connections_in_use", "Database connections checked out of this process's pools now, by engine (read or write).",
    ["engine"], namespace=NAMESPACE, multiprocess_mode="livesum",
)
# Sampled from the database when /metrics is scraped: the same for every process, so the most
# recent sample wins across processes.
QUEUE_DEPTH = Gauge(
    "queue_targets", "Targets waiting to publish, by status (scheduled, retry_pending) and whether they are due now.",
    ["status", "due"], namespace=NAMESPACE, multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_DUE_AGE = Gauge(
    "queue_oldest_due_age_seconds", "How long the longest-waiting due target has been due (0 when none is due).",
    namespace=NAMESPACE, multiprocess_mode="mostrecent",
)

_operation_names: set[str] = set()


def operation_label(name: str | None) -> str:
    """A bounded label for a client's operation name: "anonymous", the name, or "other"."""
    if not name:
        return "anonymous"
    if not OPERATION_NAME.fullmatch(name):
        return "other"
    if name not in _operation_names:
        if len(_operation_names) >= MAX_OPERATION_NAMES:
            return "other"
        _operation_names.add(name)
    return name


def observe_graphql(operation: str | None, outcome: str, seconds: float) -> None:
    """One query or mutation ended: ``outcome`` is "ok", "refused" or the first error's code."""
    label = operation_label(operation)
    if outcome not in ("ok", "refused"):
        outcome = outcome if outcome in REQUEST_OUTCOMES else "error"
    GRAPHQL_REQUESTS.labels(label, outcome).inc()
    GRAPHQL_LATENCY.labels(label).observe(seconds)


def count_publish_attempt(provider: str, outcome: str) -> None:
    PUBLISH_ATTEMPTS.labels(provider, outcome).inc()


def observe_job_finished(kind: str, status: str, seconds: float) -> None:
    JOB_DURATION.labels(kind, status).observe(max(0.0, seconds))


@contextmanager
def subscription_open(field: str) -> Iterator[None]:
    """Counts the subscription as open for as long as the block runs."""
    gauge = SUBSCRIPTIONS_OPEN.labels(field)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def count_events_relayed(kinds: list[str]) -> None:
    for kind in kinds:
        EVENTS_RELAYED.labels(kind).inc()


def count_webhook_deliveries(delivered: int, failed: int) -> None:
    if delivered:
        WEBHOOK_DELIVERIES.labels("delivered").inc(delivered)
    if failed:
        WEBHOOK_DELIVERIES.labels("failed").inc(failed)
