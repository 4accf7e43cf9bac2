"""Plugin loading: entry points, the allow-list, broken plugins reported by name, hooks fanned out."""

import json
import logging
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.plugins import load_plugins
from providers import Event, PostDraft, hookimpl
from tests.plugin_packages import write_distribution
from tests.provider_table import providers_table

runner = CliRunner()

GOOD_PROVIDER = """
    from providers import Provider, PublishResult, hookimpl

    class Echo(Provider):
        id = "echo"
        name = "Echo"

        async def publish(self, ctx, request):
            return PublishResult(platform_post_id="echo-1")

    @hookimpl
    def register_providers():
        return [Echo()]
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path holding third-party plugin distributions, broken ones included."""
    folder = tmp_path / "site"
    folder.mkdir()
    write_distribution(folder, "sg-echo", "1.2.0", {"sg_echo": GOOD_PROVIDER}, {"echo": "sg_echo"})
    write_distribution(folder, "sg-broken", "0.0.1", {"sg_broken": "raise RuntimeError('boom at import')\n"}, {"broken": "sg_broken"})
    write_distribution(
        folder,
        "sg-squatter",
        "0.3.0",
        {"sg_squatter": GOOD_PROVIDER.replace('id = "echo"', 'id = "sandbox"')},
        {"squatter": "sg_squatter"},
    )
    write_distribution(
        folder,
        "sg-invalid",
        "0.1.0",
        {"sg_invalid": GOOD_PROVIDER.replace('id = "echo"', 'id = "Bad Id"')},
        {"invalid": "sg_invalid"},
    )
    write_distribution(
        folder,
        "sg-policy",
        "2.0.0",
        {
            "sg_policy": """
                from providers import Issue, hookimpl

                seen = []

                @hookimpl
                def validate_post(draft, provider):
                    if "forbidden" in draft.text:
                        return [Issue(("text",), "POLICY_FORBIDDEN_WORD", f"not on {provider.id}")]
                    return []

                @hookimpl
                def on_event(event):
                    seen.append(event.kind)
            """,
            "sg_faulty_policy": """
                from providers import hookimpl

                @hookimpl
                def validate_post(draft):
                    raise ValueError("policy bug")

                @hookimpl
                def on_event(event):
                    raise ValueError("observer bug")
            """,
        },
        {"policy": "sg_policy", "faulty-policy": "sg_faulty_policy"},
    )
    monkeypatch.syspath_prepend(str(folder))
    return folder


def by_name(registry):
    return {info.name: info for info in registry.plugins}


def test_broken_plugins_are_named_and_the_rest_load(site, caplog):
    with caplog.at_level(logging.ERROR, logger="socialgate.plugins"):
        registry = load_plugins()
    plugins = by_name(registry)
    assert set(registry.providers) >= {"sandbox", "echo"}
    assert registry.get("sandbox").__class__.__name__ == "Sandbox"  # the built-in keeps its id
    assert plugins["echo"].error is None and plugins["echo"].version == "1.2.0"
    assert plugins["echo"].providers == ("echo",) and plugins["echo"].hooks == ("register_providers",)
    assert plugins["broken"].error == "import failed: RuntimeError: boom at import"
    assert plugins["squatter"].error == "provider id 'sandbox' is already provided by plugin 'sandbox'"
    assert plugins["squatter"].providers == ()
    assert "provider 'Bad Id' is invalid: id: id 'Bad Id' must be" in plugins["invalid"].error
    assert "plugin broken not loaded" in caplog.text


def test_allow_list_loads_only_the_named_plugins(site):
    registry = load_plugins(("echo", "typo"))
    assert set(registry.providers) == {"echo"}
    assert by_name(registry)["typo"].error == "allowed by SOCIALGATE_PLUGINS but not installed"
    assert "sandbox" not in by_name(registry)


async def test_validate_post_hooks_add_issues_and_a_failing_hook_blocks(site):
    registry = load_plugins(("sandbox", "policy", "faulty-policy"))
    sandbox = registry.get("sandbox")
    issues = await registry.validate_post(PostDraft(text="a forbidden word"), sandbox, "acct_1")
    assert sorted(i.code for i in issues) == ["POLICY_CHECK_FAILED", "POLICY_FORBIDDEN_WORD"]
    assert next(i for i in issues if i.code == "POLICY_FORBIDDEN_WORD").message == "not on sandbox"
    assert "faulty-policy" in next(i for i in issues if i.code == "POLICY_CHECK_FAILED").message


def test_a_raising_observer_never_breaks_the_caller(site, caplog):
    import sg_policy

    registry = load_plugins(("policy", "faulty-policy"))
    event = Event("target.published", "org_1", datetime.now(UTC), subject_id="tgt_1")
    with caplog.at_level(logging.ERROR, logger="socialgate.plugins"):
        registry.emit(event)
    assert sg_policy.seen == ["target.published"]
    assert "on_event of plugin faulty-policy failed" in caplog.text


def test_unknown_hooks_fail_the_plugin(site):
    write_distribution(site, "sg-typo", "1.0", {"sg_typo": """
        from providers import hookimpl

        @hookimpl
        def register_provider():
            return []
    """}, {"typo-hook": "sg_typo"})
    info = by_name(load_plugins(("typo-hook",)))["typo-hook"]
    assert info.error == "unknown hooks: register_provider"


def test_plugins_list_cli_shows_errors_and_exits_cleanly(site):
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert listed["sandbox"] == {
        "name": "sandbox", "version": listed["sandbox"]["version"], "distribution": "socialgate",
        "hooks": ["register_providers"], "providers": ["sandbox"], "error": None,
    }
    assert listed["broken"]["error"] == "import failed: RuntimeError: boom at import"
    assert listed["squatter"]["error"].startswith("provider id 'sandbox' is already provided")
    table = runner.invoke(app, ["plugins", "list"], env={"COLUMNS": "250"})
    assert table.exit_code == 0
    assert "broken" in table.stdout and "boom at import" in table.stdout and "1.2.0" in table.stdout


def test_plugins_list_honours_the_allow_list(site):
    result = runner.invoke(app, ["plugins", "list", "--json"], env={"SOCIALGATE_PLUGINS": "echo"})
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["echo"]


def test_providers_cli_tables_capabilities_and_limits():
    row = providers_table()["sandbox"]
    assert row["name"] == "Sandbox" and row["auth"].startswith("credentials")
    for capability in ("threads", "delete", "metrics", "ads"):
        assert capability in row["capabilities"]
    assert (row["text"], row["media"], row["thread"]) == ("5000 characters", "4 (gif, image, video)", "25")


async def test_the_running_gateway_survives_broken_plugins(site, api):
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert by_name(api.runtime.plugins)["broken"].error == "import failed: RuntimeError: boom at import"
    assert api.runtime.plugins.get("echo").id == "echo"


def test_observers_are_known_so_events_are_copied_only_for_them(site):
    assert load_plugins(("policy",)).has_observers()
    assert not load_plugins(("sandbox",)).has_observers()


async def test_the_runtime_hands_events_to_observers_only_when_there_are_some(site, settings, monkeypatch):
    from gateway.events import BusEvent
    from gateway.runtime import Runtime

    for plugins, observed in ((("sandbox", "policy"), ["job.queued"]), (("sandbox",), [])):
        runtime = Runtime(settings.model_copy(update={"plugins": plugins}))
        emitted: list[str] = []
        monkeypatch.setattr(runtime.plugins, "emit", lambda event, emitted=emitted: emitted.append(event.kind))
        try:
            await runtime.publish(BusEvent("org_1", "job.queued", {}, datetime.now(UTC), job_id="job_1", seq=1))
        finally:
            await runtime.stop()
        assert emitted == observed


class _SlowObserver:
    """An async on_event observer that waits for ``gate``; records what it finished or was cancelled in."""

    def __init__(self) -> None:
        import asyncio

        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.outcomes: list[str] = []

    @hookimpl
    async def on_event(self, event):
        import asyncio

        self.started.append(event.subject_id)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.outcomes.append("cancelled")
            raise
        self.outcomes.append("done")


def _event(n: int) -> Event:
    return Event("target.published", "org_1", datetime.now(UTC), subject_id=f"tgt_{n}")


async def test_async_observers_are_bounded_per_plugin_and_drained(caplog):
    from gateway.plugins import MAX_PENDING_OBSERVATIONS, PluginRegistry

    registry = PluginRegistry()
    slow = _SlowObserver()
    registry.add("slow", slow)
    with caplog.at_level(logging.ERROR, logger="socialgate.plugins"):
        for n in range(MAX_PENDING_OBSERVATIONS + 3):
            registry.emit(_event(n))
    assert registry.pending_observations() == MAX_PENDING_OBSERVATIONS  # the last three were dropped, and said so
    assert caplog.text.count("dropped") == 3
    slow.gate.set()
    await registry.drain(timeout=30)
    assert registry.pending_observations() == 0
    assert slow.outcomes == ["done"] * MAX_PENDING_OBSERVATIONS and len(slow.started) == MAX_PENDING_OBSERVATIONS


async def test_stopping_the_runtime_waits_for_observers_then_cancels_the_stuck(settings):
    from gateway.runtime import Runtime

    runtime = Runtime(settings)
    await runtime.start()
    slow = _SlowObserver()
    runtime.plugins.add("slow", slow)
    runtime.observer_grace = 0.05
    runtime.plugins.emit(_event(1))
    await runtime.stop()  # the gate never opens: the observer is given its grace, then cancelled, not dropped unawaited
    assert slow.outcomes == ["cancelled"]
    assert runtime.plugins.pending_observations() == 0
