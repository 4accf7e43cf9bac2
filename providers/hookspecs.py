"""The hooks a socialgate plugin can implement.

A plugin is a module (or object) named by an entry point in the ``socialgate.providers`` group.
It marks its hook functions with ``providers.hookimpl``::

    from providers import hookimpl

    @hookimpl
    def register_providers():
        return [SlackWebhook()]

A hook implementation may accept fewer arguments than the spec lists (pluggy passes only those
it names), so a plugin written today keeps working when a hook gains an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from providers.calls import Event
    from providers.provider import Provider
    from providers.validation import Issue, PostDraft

PROJECT = "socialgate"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers() -> list[Provider]:
    """Return the platform adapters this plugin contributes.

    Called once per plugin when the gateway starts (and by ``socialgate plugins list`` and
    ``socialgate providers``), before any request is served. Takes no arguments.

    Return a list of ``Provider`` instances (an empty list is fine for a plugin that only
    implements ``validate_post`` or ``on_event``). Each provider's ``id`` must be unique across
    every installed plugin: if another plugin already registered it, this plugin is reported as
    failed with that reason and none of its providers load. A provider whose declarations are
    inconsistent (see ``providers.validation.check_declarations``) fails the plugin the same way.
    """


@hookspec
def validate_post(draft: PostDraft, provider: Provider, account_id: str) -> list[Issue] | None:
    """Add policy checks to a post before it is scheduled or published (may be ``async def``).

    Called by the gateway for every target of ``createPost``/``schedulePost``/``publishPost``/
    ``validatePost``, after the provider's own limits and settings were checked, so every plugin
    sees the same draft whether or not it already has problems.

    - ``draft``: the ``PostDraft`` for this target: text after per-platform overrides, media
      descriptions (kind, MIME type, size, dimensions, duration), per-post settings, and the
      thread parts after the first post.
    - ``provider``: the ``Provider`` the target publishes through (read its ``id``, ``limits``…).
    - ``account_id``: the gateway id (``acct_…``) of the connected account being published to.

    Return a list of ``Issue`` (empty or None when the draft is fine). Any issue blocks the post,
    and is shown to the caller with its ``field``, ``code`` and ``message``. An implementation
    that raises is logged and reported as a ``POLICY_CHECK_FAILED`` issue: a broken policy check
    blocks a post rather than letting it through unchecked.
    """


@hookspec
def on_event(event: Event) -> Any:
    """Observe what happens in the gateway (audit trails, notifications); may be ``async def``.

    Called after the event is recorded — a target published or failed, an account's token
    expired, a job finished — once per event, in no guaranteed order between plugins.

    - ``event``: an ``Event`` with ``kind`` (``target.published``…), ``organization_id``,
      ``occurred_at``, ``subject_id`` and a ``payload`` of ids and figures (never credentials).

    The return value is ignored. An observer cannot change or stop what happened: if it raises,
    the error is logged and the gateway carries on. Slow work belongs in an ``async def``
    implementation, which the gateway runs without waiting for it.
    """
