"""Optional OpenTelemetry tracing of a publish: the command that queued a job, and each provider
call made for it, in one trace — whichever processes they ran in.

Why a trace id derived from the job id: the command runs in an API process and the call in a
worker, maybe hours later, and nothing of the request travels with the job. Both sides derive
the same parent context from the job id (trace id = the first 16 bytes of SHA-256 of it, parent
span id the next 8), so a tracing backend shows the command's span and every call's span side by
side in one trace, without a column to carry a ``traceparent``. The command's span also links to
the request's own span when the HTTP server is instrumented.

Off unless ``opentelemetry-api`` is installed (``pip install 'socialgate[otel]'``) and a tracer
provider is configured (``opentelemetry-instrument``, docs/deploy.md). Without one, the command's
span is not even built: the no-op tracer would drop it, after a hash, a context and a span object
that cost 1.5% of a publishPost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, ProxyTracerProvider, SpanContext, SpanKind, TraceFlags
except ImportError:  # the [otel] extra is not installed: tracing is off
    trace = None

TRACER_NAME = "socialgate"


def job_trace_context(job_id: str) -> Any:
    """The context every span of ``job_id`` starts in: a remote parent derived from the id."""
    digest = hashlib.sha256(job_id.encode()).digest()
    parent = SpanContext(
        trace_id=int.from_bytes(digest[:16], "big") or 1, span_id=int.from_bytes(digest[16:24], "big") or 1,
        is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def trace_job_command(job_id: str, kind: str, started_ns: int) -> None:
    """Record the command that queued (or returned) ``job_id`` as a span from ``started_ns`` to now."""
    if trace is None or isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        return  # no provider was ever set: nothing would record it
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    span = trace.get_tracer(TRACER_NAME).start_span(
        "socialgate.job.command", context=job_trace_context(job_id), kind=SpanKind.SERVER, start_time=started_ns, links=links,
        attributes={"socialgate.job_id": job_id, "socialgate.job.kind": kind},
    )
    span.end()


@contextmanager
def provider_call_span(job_id: str | None, provider: str, target_id: str) -> Iterator[Any]:
    """A span around one provider call made for ``job_id``'s target, in the job's trace; yields it
    (or None without tracing) so the caller can record the outcome."""
    if trace is None or job_id is None:
        yield None
        return
    with trace.get_tracer(TRACER_NAME).start_as_current_span(
        "socialgate.provider.publish", context=job_trace_context(job_id), kind=SpanKind.CLIENT,
        attributes={"socialgate.job_id": job_id, "socialgate.provider": provider, "socialgate.target_id": target_id},
    ) as span:
        yield span
