"""One execution of a subscription document per event, shared by every subscriber that sent it.

A thousand dashboards subscribed with the same document receive the same event: graphql-core
would execute the same selection set a thousand times, the bulk of the cost of fanning out.
Subscribers of one document (same parsed operation, same variables) are given the same event
object (see ``shared_payload``), and the execution result of that object is computed once and
reused. Events are routed by organization, so an event object — and its result — only ever
reaches the subscribers of its own organization; the event types' fields read nothing but the
event, so the result is the same for each of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")
CACHE_SIZE = 1_024

# id(source event) → (source event, payload): holding the source keeps its id from being reused.
_payloads: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
# (document text, operation name, variables, id(payload)) → (payload, result). The operation is
# keyed by its text, never by the id() of its parsed object: the parser cache is bounded, an
# evicted document is collected, and another document parsed later could take over its id and
# be handed a result of different fields. The text also lets re-parsed copies of one document share.
ShareKey = tuple[str, str, str, int]
_results: OrderedDict[ShareKey, tuple[Any, Any]] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def shared_payload(source: Any, build: Callable[[Any], T]) -> T:
    """The payload built from ``source``, the same object for every subscriber of that event."""
    entry = _payloads.get(id(source))
    if entry is not None and entry[0] is source:
        return entry[1]
    payload = build(source)
    _remember(_payloads, id(source), (source, payload))
    return payload


class _Computed:
    """Stands in for a per-event executor whose result another subscriber already computed."""

    def __init__(self, result: Any) -> None:
        self._result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self._result


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, reusing a subscription event's result across identical subscribers."""

    _share_key: ShareKey | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        operation = self.operation
        if operation.loc is None:  # parsed without locations: no text to key on, so nothing is shared
            return super().build_per_event_executor(payload)
        variables = getattr(self.variable_values, "coerced", None) or {}
        name = operation.name.value if operation.name else ""
        key = (operation.loc.source.body, name, repr(sorted(variables.items())), id(payload))
        cached = _results.get(key)
        if cached is not None and cached[0] is payload:
            return _Computed(cached[1])  # no per-event copy of the executor for an event already done
        executor = super().build_per_event_executor(payload)
        executor._share_key = key
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        key = self._share_key
        if key is None:
            return super().execute_operation(serially)
        cached = _results.get(key)
        if cached is not None and cached[0] is self.root_value:
            return cached[1]
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult):
            _remember(_results, key, (self.root_value, result))
            return result
        return self._remember_when_done(key, result)

    async def _remember_when_done(self, key: ShareKey, pending: Any) -> Any:
        result = await pending
        _remember(_results, key, (self.root_value, result))
        return result
