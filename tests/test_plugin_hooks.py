"""Plugin hooks are called through pluggy's ``manager.hook``: wrappers and call monitoring see every call,
and SOCIALGATE_TRACE_PLUGINS=1 logs each one with its plugin and duration."""

import logging
from datetime import UTC, datetime

from gateway.plugins import PluginRegistry
from providers import Event, Issue, PostDraft, hookimpl

PROVIDER = object()  # what validate_post is handed; these plugins never read it


class Wrapper:
    """A hook wrapper, as a tracing or auditing plugin would register: it records the calls it wraps."""

    def __init__(self) -> None:
        self.wrapped: list[str] = []

    @hookimpl(wrapper=True)
    def register_providers(self):
        self.wrapped.append("register_providers")
        return (yield)

    @hookimpl(wrapper=True)
    def validate_post(self, draft):
        self.wrapped.append("validate_post")
        return (yield)

    @hookimpl(wrapper=True)
    def on_event(self, event):
        self.wrapped.append("on_event")
        return (yield)


class Policy:
    def __init__(self, code: str) -> None:
        self.code = code
        self.seen: list[str] = []

    @hookimpl
    def register_providers(self):
        return []

    @hookimpl
    def validate_post(self, draft):
        return [Issue(("text",), self.code, "no")]

    @hookimpl
    def on_event(self, event):
        self.seen.append(event.kind)


class AsyncPolicy:
    @hookimpl
    async def validate_post(self, draft):
        return [Issue(("text",), "ASYNC", "no")]


def _event() -> Event:
    return Event("target.published", "org_1", datetime.now(UTC), subject_id="tgt_1")


async def test_hook_wrappers_see_every_hook_the_gateway_calls():
    registry = PluginRegistry()
    wrapper = Wrapper()
    assert registry.add("wrapper", wrapper).loaded
    policy = Policy("FIRST")
    assert registry.add("policy", policy).loaded
    issues = await registry.validate_post(PostDraft(text="x"), PROVIDER, "acct_1")
    registry.emit(_event())
    assert [i.code for i in issues] == ["FIRST"] and policy.seen == ["target.published"]
    assert wrapper.wrapped == ["register_providers", "validate_post", "on_event"]
    assert registry.has_policy_hooks() and registry.has_observers()  # a wrapper alone would not count


async def test_call_monitoring_sees_each_plugin_called_on_its_own():
    registry = PluginRegistry()
    registry.add("first", Policy("FIRST"))
    registry.add("second", Policy("SECOND"))
    calls: list[tuple[str, list[str]]] = []
    registry.manager.add_hookcall_monitoring(
        lambda name, implementations, kwargs: calls.append((name, [i.plugin_name for i in implementations])),
        lambda outcome, name, implementations, kwargs: None,
    )
    issues = await registry.validate_post(PostDraft(text="x"), PROVIDER, "acct_1")
    assert sorted(i.code for i in issues) == ["FIRST", "SECOND"]
    assert calls == [("validate_post", ["first"]), ("validate_post", ["second"])]


async def test_tracing_logs_each_hook_call_with_its_plugin_and_duration(caplog):
    registry = PluginRegistry(trace=True)
    with caplog.at_level(logging.INFO, logger="socialgate.plugins"):
        registry.add("policy", Policy("FIRST"))
        registry.add("async-policy", AsyncPolicy())
        issues = await registry.validate_post(PostDraft(text="x"), PROVIDER, "acct_1")
        registry.emit(_event())
    assert sorted(i.code for i in issues) == ["ASYNC", "FIRST"]
    traced = [(r.hook, r.plugins) for r in caplog.records if hasattr(r, "duration_ms")]
    assert traced == [
        ("register_providers", ["policy"]),
        ("validate_post", ["policy"]),
        ("validate_post", ["async-policy"]),  # the call, which only made the coroutine
        ("validate_post", ["async-policy"]),  # and the coroutine, timed until it finished
        ("on_event", ["policy"]),
    ]
    assert all(r.duration_ms >= 0 for r in caplog.records if hasattr(r, "duration_ms"))
    assert "plugin hook validate_post of async-policy awaited:" in caplog.text


def test_without_tracing_nothing_is_logged(caplog):
    registry = PluginRegistry()
    with caplog.at_level(logging.DEBUG, logger="socialgate.plugins"):
        registry.add("policy", Policy("FIRST"))
        registry.emit(_event())
    assert not [r for r in caplog.records if hasattr(r, "duration_ms")]


async def test_the_setting_turns_tracing_on_for_the_runtime(settings, monkeypatch, caplog):
    from gateway.runtime import Runtime
    from gateway.settings import load_settings

    monkeypatch.setenv("SOCIALGATE_TRACE_PLUGINS", "1")
    traced = load_settings(database_url=settings.database_url, data_dir=settings.data_dir)
    assert traced.trace_plugins is True and settings.trace_plugins is False
    with caplog.at_level(logging.INFO, logger="socialgate.plugins"):
        runtime = Runtime(traced.model_copy(update={"plugins": ("sandbox",)}))
    try:
        assert [(r.hook, r.plugins) for r in caplog.records if hasattr(r, "duration_ms")] == [("register_providers", ["sandbox"])]
    finally:
        await runtime.stop()


async def test_a_plugin_object_that_cannot_be_hashed_is_called_through_the_hook_too():
    """pluggy's per-plugin calls keep plugins in a set; a SimpleNamespace of hooks is registered all the same."""
    from types import SimpleNamespace

    registry = PluginRegistry()
    wrapper = Wrapper()
    registry.add("wrapper", wrapper)
    policy = Policy("NAMESPACED")
    info = registry.add("namespaced", SimpleNamespace(validate_post=policy.validate_post, register_providers=policy.register_providers))
    assert info.loaded and info.hooks == ("register_providers", "validate_post")
    issues = await registry.validate_post(PostDraft(text="x"), PROVIDER, "acct_1")
    assert [i.code for i in issues] == ["NAMESPACED"]
    assert wrapper.wrapped == ["register_providers", "validate_post"]
