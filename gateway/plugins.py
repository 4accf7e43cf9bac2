"""Finding, loading and calling plugins: every ``socialgate.providers`` entry point, built-ins included.

Built-in plugins are registered through the same entry-point group as a third party's, so the
sandbox loads exactly the way an installed package does. A plugin that fails to import, declares
an inconsistent provider or reuses another plugin's provider id is recorded with its error and
left out; the others load and the gateway runs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from gateway.core.background import BackgroundTasks
from providers import Event, Issue, PostDraft, Provider, hookspecs
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


def _call(implementation: Any, arguments: dict[str, Any]) -> Any:
    # pluggy lets an implementation take only some of the spec's arguments: pass those it names.
    return implementation.function(*(arguments[name] for name in implementation.argnames))


class PluginRegistry:
    """The loaded plugins and their providers, and the fan-out of the policy and observer hooks."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.providers: dict[str, Provider] = {}
        self.plugins: list[PluginInfo] = []
        self._provider_owner: dict[str, str] = {}
        self._observations: dict[str, BackgroundTasks] = {}  # per plugin: one slow observer starves no other

    def get(self, provider_id: str) -> Provider | None:
        return self.providers.get(provider_id)

    def add(self, name: str, plugin: object, *, version: str | None = None, distribution: str | None = None) -> PluginInfo:
        """Register one plugin object (a module, usually) and its providers, or record why not."""
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
        offered: list[Provider] = []
        for implementation in self.manager.hook.register_providers.get_hookimpls():
            if implementation.plugin_name == name:
                returned = implementation.function()
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
        arguments = {"draft": draft, "provider": provider, "account_id": account_id}
        for implementation in self.manager.hook.validate_post.get_hookimpls():
            try:
                returned = _call(implementation, arguments)
                if inspect.isawaitable(returned):
                    returned = await returned
                issues.extend(returned or ())
            except Exception as exc:
                log.exception("validate_post of plugin %s failed", implementation.plugin_name)
                issues.append(
                    Issue((), "POLICY_CHECK_FAILED", f"The policy check of plugin {implementation.plugin_name} failed: {_describe(exc)}")
                )
        return issues

    def has_policy_hooks(self) -> bool:
        """Whether any plugin implements ``validate_post`` (whose calls may be slow, e.g. a moderation API)."""
        return bool(self.manager.hook.validate_post.get_hookimpls())

    def has_observers(self) -> bool:
        """Whether any plugin implements ``on_event`` (its copy of an event is only built then)."""
        return bool(self.manager.hook.on_event.get_hookimpls())

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every ``on_event`` observer; one that raises is logged and skipped."""
        for implementation in self.manager.hook.on_event.get_hookimpls():
            try:
                returned = _call(implementation, {"event": event})
                if inspect.isawaitable(returned):
                    self._run_in_background(implementation.plugin_name, returned, event.kind)
            except Exception:
                log.exception("on_event of plugin %s failed", implementation.plugin_name, extra={"event": event.kind})

    def _run_in_background(self, plugin_name: str, awaitable: Any, kind: str) -> None:
        tasks = self._observations.get(plugin_name)
        if tasks is None:
            tasks = self._observations[plugin_name] = BackgroundTasks(
                f"on_event of plugin {plugin_name}", log, limit=MAX_PENDING_OBSERVATIONS
            )
        tasks.spawn(awaitable, kind)

    def pending_observations(self) -> int:
        """Async ``on_event`` calls still running."""
        return sum(len(tasks) for tasks in self._observations.values())

    async def drain(self, timeout: float) -> None:
        """At stop: let running observers finish, for up to ``timeout`` seconds each plugin; cancel the rest."""
        for tasks in self._observations.values():
            await tasks.drain(timeout)


def load_plugins(allow: tuple[str, ...] | None = None, *, found: Iterable[EntryPoint] | None = None) -> PluginRegistry:
    """Load every installed plugin (or only those named in ``allow``, i.e. SOCIALGATE_PLUGINS).

    ``found`` replaces entry-point discovery (tests). An allowed name with no installed plugin is
    reported as an error, so a typo in the allow-list shows in ``socialgate plugins list``.
    """
    registry = PluginRegistry()
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
