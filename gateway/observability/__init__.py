"""Observability: Prometheus series about the whole service and the ``/metrics`` scrape.

``instruments`` holds every series (names, labels, buckets) and the one-line hooks the counting
places call (the GraphQL view, the engine's calls and jobs, subscriptions, the relay, the webhook
dispatcher); ``exposition`` serves the scrape, multiprocess-safe when ``PROMETHEUS_MULTIPROC_DIR``
is set, behind its own token or on a port of its own (see docs/deploy.md); ``doctor`` checks a
deployment's configuration for `socialgate doctor`; ``tracing`` puts a publish's command and its
provider calls in one OpenTelemetry trace when the ``otel`` extra is installed.
Not to be confused with ``gateway.metrics``: a post's figures on the platforms.
"""

from gateway.observability.doctor import Finding, diagnose
from gateway.observability.exposition import (
    MetricsServer,
    exposition,
    forget_process,
    metrics_endpoint,
    sample_queue,
    watch_pools,
)
from gateway.observability.instruments import (
    count_events_relayed,
    count_publish_attempt,
    count_webhook_deliveries,
    observe_graphql,
    observe_job_finished,
    operation_label,
    subscription_open,
)
from gateway.observability.tracing import provider_call_span, trace_job_command

__all__ = [
    "Finding",
    "MetricsServer",
    "count_events_relayed",
    "count_publish_attempt",
    "count_webhook_deliveries",
    "diagnose",
    "exposition",
    "forget_process",
    "metrics_endpoint",
    "observe_graphql",
    "observe_job_finished",
    "operation_label",
    "provider_call_span",
    "sample_queue",
    "subscription_open",
    "trace_job_command",
    "watch_pools",
]
