"""OpenTelemetry (the `otel` extra): one publish's command and its provider call share one trace,
derived from the job id, so an API process and a worker put their spans side by side."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.observability.tracing import job_trace_context
from tests.engine import engine_app, new_post, publish, sandbox_account, scheduler_for, setup_org

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider (set once: OpenTelemetry allows no second), its spans kept in memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


def _trace_id(job_id: str) -> int:
    return trace.get_current_span(job_trace_context(job_id)).get_span_context().trace_id


async def test_a_publish_is_one_trace_from_the_mutation_to_the_provider_call(tmp_path, spans):
    spans.clear()
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret)
        job_id = (await publish(api, org.secret, await new_post(api, org.secret, [account])))["job"]["id"]
        await scheduler_for(api).drain()
    finished = {span.name: span for span in spans.get_finished_spans() if span.attributes.get("socialgate.job_id") == job_id}
    command, call = finished["socialgate.job.command"], finished["socialgate.provider.publish"]
    assert command.context.trace_id == call.context.trace_id == _trace_id(job_id)
    assert command.parent.span_id == call.parent.span_id  # siblings under the job's derived parent
    assert command.attributes["socialgate.job.kind"] == "publish"
    assert (call.attributes["socialgate.provider"], call.attributes["socialgate.outcome"]) == ("sandbox", "success")
    assert command.end_time <= call.start_time


def test_every_process_derives_the_same_trace_for_a_job_and_another_for_another():
    assert _trace_id("job_a") == _trace_id("job_a") != _trace_id("job_b")
