"""Finding, loading and calling plugins: every ``socialgate.providers`` entry point, built-ins included.

Built-in plugins are registered through the same entry-point group as a third party's, so the
sandbox loads exactly the way an installed package does. A plugin that fails to import, declares
an inconsistent provider or reuses another plugin's provider id is recorded with its error and
left out; the others load and the gateway runs.

Every hook is called through pluggy (``manager.hook``), never by taking an implementation's
function out of it: that is where hook wrappers, ``add_hookcall_monitoring`` and pluggy's own
tracing attach. Each plugin's implementation is called on its own (a subset of the hook that
keeps every wrapper), so one plugin's failure is reported with its name and never skips the
others'. ``SOCIALGATE_TRACE_PLUGINS=1`` logs every call with its plugin and duration (datasette's
``DATASETTE_TRACE_PLUGINS``); an ``async def`` implementation is timed until it has finished.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from gateway.core import BackgroundTasks
from providers import Event, Issue, PostDraft, Provider, Quota, hookspecs
from providers.validation import check_declarations

log = logging.getLogger("socialgate.plugins")

ENTRY_POINT_GROUP = "socialgate.providers"
OWN_DISTRIBUTION = "socialgate"
# Async on_event calls of one plugin still running at once; past it, that plugin's next ones are
# dropped (and logged) rather than left to grow memory behind an observer that stopped answering.
MAX_PENDING_OBSERVATIONS = 1_000


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as ``socialgate plugins list`` shows it."""

    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "hooks": list(self.hooks),
            "providers": list(self.providers),
            "error": self.error,
        }


class PluginLoadError(Exception):
    """A plugin loaded but offered something unusable (an invalid or duplicate provider)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ordered(found: Iterable[EntryPoint]) -> list[EntryPoint]:
    # socialgate's own plugins first, then the rest by name: which plugin keeps a contested
    # provider id never depends on installation order, and no package can take over a built-in's.
    def rank(entry: EntryPoint) -> tuple[int, str]:
        distribution = entry.dist.name if entry.dist else ""
        return (0 if distribution == OWN_DISTRIBUTION else 1, entry.name)

    unique: dict[str, EntryPoint] = {}
    for entry in sorted(found, key=rank):
        unique.setdefault(entry.name, entry)
    return list(unique.values())


class _Attributes:
    """A hashable copy of an unhashable plugin object's attributes (a ``SimpleNamespace`` of hooks, say).

    Each plugin is called through ``manager.subset_hook_caller``, which keeps plugins in a set.
    """

    def __init__(self, plugin: object) -> None:
        for name in dir(plugin):
            if not name.startswith("__"):
                setattr(self, name, getattr(plugin, name))


def _hashable(plugin: object) -> object:
    try:
        hash(plugin)
    except TypeError:
        return _Attributes(plugin)
    return plugin


class HookTrace:
    """``add_hookcall_monitoring``'s pair: logs each hook call, the plugins it ran and how long it took."""

    def __init__(self) -> None:
        self._started: list[float] = []  # a stack: a hook may call another

    def before(self, hook_name: str, implementations: list[pluggy.HookImpl], kwargs: dict[str, Any]) -> None:
        self._started.append(time.perf_counter())

    def after(self, outcome: Any, hook_name: str, implementations: list[pluggy.HookImpl], kwargs: dict[str, Any]) -> None:
        elapsed_ms = (time.perf_counter() - self._started.pop()) * 1000
        plugins = [i.plugin_name for i in implementations if not (i.hookwrapper or i.wrapper)]
        failed = outcome.exception is not None
        log.info(
            "plugin hook %s of %s: %.3f ms%s", hook_name, ", ".join(plugins) or "no plugin", elapsed_ms, " (raised)" if failed else "",
            extra={"hook": hook_name, "plugins": plugins, "duration_ms": round(elapsed_ms, 3), "raised": failed},
        )


class PluginRegistry:
    """The loaded plugins and their providers, and the fan-out of the policy and observer hooks."""

    def __init__(self, *, trace: bool = False) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.trace = trace
        if trace:
            tracer = HookTrace()
            self.manager.add_hookcall_monitoring(tracer.before, tracer.after)
        self.providers: dict[str, Provider] = {}
        self.plugins: list[PluginInfo] = []
        self._provider_owner: dict[str, str] = {}
        self._observations: dict[str, BackgroundTasks] = {}  # per plugin: one slow observer starves no other

    def get(self, provider_id: str) -> Provider | None:
        return self.providers.get(provider_id)

    def add(self, name: str, plugin: object, *, version: str | None = None, distribution: str | None = None) -> PluginInfo:
        """Register one plugin object (a module, usually) and its providers, or record why not."""
        plugin = _hashable(plugin)
        try:
            self.manager.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            return self.record(PluginInfo(name, version, distribution, error=_describe(exc)))
        callers = self.manager.get_hookcallers(plugin) or []
        hooks = tuple(sorted(caller.name for caller in callers))
        unknown = [caller.name for caller in callers if caller.spec is None]
        if unknown:
            self.manager.unregister(plugin, name=name)
            return self.record(PluginInfo(name, version, distribution, hooks, error=f"unknown hooks: {', '.join(unknown)}"))
        try:
            offered = self._providers_of(name)
        except PluginLoadError as exc:
            self.manager.unregister(plugin, name=name)
            return self.record(PluginInfo(name, version, distribution, hooks, error=str(exc)))
        except Exception as exc:  # a plugin's own code failing; reported, never fatal
            self.manager.unregister(plugin, name=name)
            return self.record(PluginInfo(name, version, distribution, hooks, error=f"register_providers raised {_describe(exc)}"))
        for provider in offered:
            self.providers[provider.id] = provider
            self._provider_owner[provider.id] = name
        return self.record(PluginInfo(name, version, distribution, hooks, tuple(p.id for p in offered)))

    def _providers_of(self, name: str) -> list[Provider]:
        if name not in self._implementers("register_providers"):  # a policy or observer plugin only
            return []
        offered: list[Provider] = []
        for returned in self._hook_of("register_providers", name)():
            if not isinstance(returned, (list, tuple)):
                raise PluginLoadError(f"register_providers returned {type(returned).__name__}, not a list of providers")
            offered.extend(returned)
        seen: set[str] = set()
        for provider in offered:
            issues = check_declarations(provider)
            if issues:
                problems = "; ".join(f"{'.'.join(i.field) or 'provider'}: {i.message}" for i in issues)
                raise PluginLoadError(f"provider {getattr(provider, 'id', provider)!r} is invalid: {problems}")
            owner = self._provider_owner.get(provider.id)
            if owner is not None or provider.id in seen:
                raise PluginLoadError(f"provider id {provider.id!r} is already provided by plugin {owner or name!r}")
            seen.add(provider.id)
        return offered

    def record(self, info: PluginInfo) -> PluginInfo:
        if info.error:
            log.error("plugin %s not loaded: %s", info.name, info.error, extra={"plugin": info.name})
        self.plugins.append(info)
        return info

    async def validate_post(self, draft: PostDraft, provider: Provider, account_id: str) -> list[Issue]:
        """Every ``validate_post`` hook's issues for one target; a hook that raises blocks the post."""
        issues: list[Issue] = []
        for plugin_name in self._implementers("validate_post"):
            try:
                for returned in self._hook_of("validate_post", plugin_name)(draft=draft, provider=provider, account_id=account_id):
                    if inspect.isawaitable(returned):
                        returned = await self._awaited("validate_post", plugin_name, returned)
                    issues.extend(returned or ())
            except Exception as exc:
                log.exception("validate_post of plugin %s failed", plugin_name)
                issues.append(Issue((), "POLICY_CHECK_FAILED", f"The policy check of plugin {plugin_name} failed: {_describe(exc)}"))
        return issues

    def has_policy_hooks(self) -> bool:
        """Whether any plugin implements ``validate_post`` (whose calls may be slow, e.g. a moderation API)."""
        return bool(self._implementers("validate_post"))

    def has_observers(self) -> bool:
        """Whether any plugin implements ``on_event`` (its copy of an event is only built then)."""
        return bool(self._implementers("on_event"))

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every ``on_event`` observer; one that raises is logged and skipped."""
        for plugin_name in self._implementers("on_event"):
            try:
                for returned in self._hook_of("on_event", plugin_name)(event=event):
                    if inspect.isawaitable(returned):
                        self._observe(plugin_name, returned, event.kind)
            except Exception:
                log.exception("on_event of plugin %s failed", plugin_name, extra={"event": event.kind})

    def _implementers(self, hook_name: str) -> list[str]:
        """The plugins implementing a hook (wrappers aside), in the order they were registered."""
        implementations = getattr(self.manager.hook, hook_name).get_hookimpls()
        return [i.plugin_name for i in implementations if not (i.hookwrapper or i.wrapper)]

    def _hook_of(self, hook_name: str, plugin_name: str) -> Any:
        """The hook as pluggy calls it, with ``plugin_name``'s implementation alone among the plain ones.

        Every wrapper stays, so they and the call monitoring see this call as any other.
        """
        others = [
            i.plugin for i in getattr(self.manager.hook, hook_name).get_hookimpls()
            if i.plugin_name != plugin_name and not (i.hookwrapper or i.wrapper)
        ]
        return self.manager.subset_hook_caller(hook_name, remove_plugins=others)

    async def _awaited(self, hook_name: str, plugin_name: str, pending: Awaitable[Any]) -> Any:
        """What an ``async def`` implementation returns; traced until it finished, which the call itself is not."""
        started = time.perf_counter()
        try:
            return await pending
        finally:
            if self.trace:
                elapsed_ms = (time.perf_counter() - started) * 1000
                log.info(
                    "plugin hook %s of %s awaited: %.3f ms", hook_name, plugin_name, elapsed_ms,
                    extra={"hook": hook_name, "plugins": [plugin_name], "duration_ms": round(elapsed_ms, 3)},
                )

    def _observe(self, plugin_name: str, pending: Awaitable[Any], kind: str) -> None:
        """Run an async observer in the background, timed when tracing."""
        if not self.trace:
            self._run_in_background(plugin_name, pending, kind)
            return
        if not self._run_in_background(plugin_name, self._awaited("on_event", plugin_name, pending), kind) and inspect.iscoroutine(pending):
            pending.close()  # dropped with its never-started timer: not run, and no "never awaited" warning

    def _run_in_background(self, plugin_name: str, awaitable: Awaitable[Any], kind: str) -> bool:
        tasks = self._observations.get(plugin_name)
        if tasks is None:
            tasks = self._observations[plugin_name] = BackgroundTasks(
                f"on_event of plugin {plugin_name}", log, limit=MAX_PENDING_OBSERVATIONS
            )
        return tasks.spawn(awaitable, kind)

    def pending_observations(self) -> int:
        """Async ``on_event`` calls still running."""
        return sum(len(tasks) for tasks in self._observations.values())

    async def drain(self, timeout: float) -> None:
        """At stop: let running observers finish, for up to ``timeout`` seconds each plugin; cancel the rest."""
        for tasks in self._observations.values():
            await tasks.drain(timeout)


def load_plugins(
    allow: tuple[str, ...] | None = None, *, found: Iterable[EntryPoint] | None = None, trace: bool = False
) -> PluginRegistry:
    """Load every installed plugin (or only those named in ``allow``, i.e. SOCIALGATE_PLUGINS).

    ``found`` replaces entry-point discovery (tests). An allowed name with no installed plugin is
    reported as an error, so a typo in the allow-list shows in ``socialgate plugins list``.
    ``trace`` (SOCIALGATE_TRACE_PLUGINS) logs every hook call with its plugin and duration.
    """
    registry = PluginRegistry(trace=trace)
    candidates = _ordered(entry_points(group=ENTRY_POINT_GROUP) if found is None else found)
    for entry in candidates:
        if allow is not None and entry.name not in allow:
            continue
        version = entry.dist.version if entry.dist else None
        distribution = entry.dist.name if entry.dist else None
        try:
            plugin = entry.load()
        except BaseException as exc:  # SystemExit or KeyboardInterrupt at import are a plugin's bug too
            if isinstance(exc, KeyboardInterrupt):
                raise
            registry.record(PluginInfo(entry.name, version, distribution, error=f"import failed: {_describe(exc)}"))
            continue
        registry.add(entry.name, plugin, version=version, distribution=distribution)
    for name in allow or ():
        if name not in {entry.name for entry in candidates}:
            registry.record(PluginInfo(name, None, None, error="allowed by SOCIALGATE_PLUGINS but not installed"))
    return registry


# -- the providers as a table (``socialgate providers``, docs/providers.md) ----------------------

PROVIDER_COLUMNS = ("id", "name", "auth", "approval", "capabilities", "text", "media", "thread", "metrics", "quotas")


def quota_label(quota: Quota) -> str:
    """``50 per 24 h``, ``100 deletes per 24 h``, or ``10000 units per 24 h per app, 1600 a post`` when a post costs more than one."""
    hours = quota.period_seconds / 3600
    period = f"{hours:g} h" if hours >= 1 else f"{quota.period_seconds} s"
    unit = " units" if quota.cost > 1 else " deletes" if quota.operation == "delete" else ""
    label = f"{quota.count}{unit} per {period}"
    if quota.scope == "app":
        label += " per app"
    return label + (f", {quota.cost} a post" if quota.cost > 1 else "")


def provider_row(provider: Provider) -> dict[str, str]:
    """One provider's declarations in words, a cell per ``PROVIDER_COLUMNS`` name.

    Read only from the declarations (never from a call), so the table in docs/providers.md is
    what the registry says and a test can compare the two.
    """
    limits = provider.limits
    auth = provider.auth_kind
    if auth == "credentials":
        auth += ": " + ", ".join(field.name for field in provider.auth)  # type: ignore[union-attr]
    media = f"{limits.max_media} ({', '.join(sorted(limits.media_kinds))})" if limits.max_media else "none"
    if limits.media_required:
        media += ", required"
    spec = provider.metrics
    metrics = [f"{kind}: {', '.join(names)}" for kind, names in (("post", spec.post), ("account", spec.account)) if names] if spec else []
    return {
        "id": provider.id,
        "name": provider.name,
        "auth": auth,
        "capabilities": ", ".join(name for name, on in provider.capabilities.as_dict().items() if on),
        "text": "; ".join(f"{limit.max_length} {limit.unit.label}" for limit in limits.text_limits) or "no limit",
        "media": media,
        "thread": str(limits.max_thread_parts),
        "quotas": "; ".join(quota_label(quota) for quota in limits.quotas) or "none",
        "metrics": "; ".join(metrics) or "none",
        "approval": provider.approval or "not declared",
    }


def builtin_provider_ids(registry: PluginRegistry) -> set[str]:
    """The providers of plugins shipped with socialgate itself (not a third party's package)."""
    return {pid for info in registry.plugins if info.distribution == OWN_DISTRIBUTION for pid in info.providers}


def providers_markdown(providers: Iterable[Provider]) -> str:
    """The providers as a Markdown table, sorted by id, pipes in cells escaped."""
    rows = [provider_row(provider) for provider in sorted(providers, key=lambda p: p.id)]
    lines = ["| " + " | ".join(PROVIDER_COLUMNS) + " |", "|" + "---|" * len(PROVIDER_COLUMNS)]
    lines += ["| " + " | ".join(row[column].replace("|", "\\|") for column in PROVIDER_COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
