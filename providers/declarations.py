"""What a provider declares about its platform, as frozen data the gateway can read without calling it.

Everything here is plain, immutable and comparable, so the gateway can show it (``socialgate
providers``, the GraphQL ``providers`` query), validate drafts against it before anything is sent,
and a conformance run can check it is self-consistent.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from providers.text import TextUnit, measure

MEDIA_KINDS = frozenset({"image", "video", "gif", "document"})
SETTING_TYPES = ("string", "boolean", "integer", "choice")
CREDENTIAL_KINDS = ("string", "secret", "url", "integer", "choice")

SettingType = Literal["string", "boolean", "integer", "choice"]
CredentialKind = Literal["string", "secret", "url", "integer", "choice"]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Capabilities:
    """What the platform lets the provider do beyond publishing a single post."""

    publish: bool = True
    threads: bool = False  # publishes a chain of posts, each replying to the one before
    delete: bool = False
    metrics: bool = False
    reconcile: bool = False  # can tell whether a publish whose answer was lost went through
    ads: bool = False
    first_comment: bool = False
    native_scheduling: bool = False  # the platform itself can hold a post until a time
    processing: bool = False  # publish may answer ``Processing``; the gateway then calls ``poll``

    def as_dict(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class TextLimit:
    """A further cap counted in another unit (Bluesky: 300 graphemes *and* 3000 UTF-8 bytes)."""

    max_length: int
    unit: TextUnit


@dataclass(frozen=True)
class Quota:
    """A posting quota: at most ``count`` units per ``period_seconds`` (per account unless ``scope`` says app).

    Each publish uses ``cost`` units: 1 for a count of posts (Instagram's 50 per 24 h), more
    where the platform meters in units (YouTube: an upload costs 1,600 of a project's 10,000 a
    day). ``scope="app"`` counts every account connected through the same app (OAuth client).
    The gateway holds a post back until the quota has room instead of letting the platform refuse it.
    """

    count: int
    period_seconds: int
    scope: Literal["account", "app"] = "account"
    description: str = ""
    cost: int = 1
    # What the quota meters: publishes (the default), or deletes (Threads allows 100 a day), which
    # must never hold a publish back.
    operation: Literal["publish", "delete"] = "publish"


@dataclass(frozen=True)
class Limits:
    """What the platform accepts in one post; drafts are validated against this before sending.

    ``max_text_length`` is counted in ``text_unit`` (None = no limit); ``max_media`` counts
    attachments of the kinds in ``media_kinds``; ``max_media_bytes`` and
    ``max_media_duration_ms`` are per kind (a kind absent from them has no such cap);
    ``max_media_per_kind`` caps one kind inside the total (X: 4 images but 1 video);
    ``max_thread_parts`` is the length of a thread including the first post (1 = no threads).
    """

    max_text_length: int | None = None
    text_unit: TextUnit = TextUnit.CHARACTERS
    extra_text_limits: tuple[TextLimit, ...] = ()
    max_media: int = 0
    media_kinds: frozenset[str] = frozenset()
    max_media_bytes: Mapping[str, int] = field(default_factory=dict)
    max_media_duration_ms: Mapping[str, int] = field(default_factory=dict)
    max_media_per_kind: Mapping[str, int] = field(default_factory=dict)
    media_required: bool = False
    max_thread_parts: int = 1
    quotas: tuple[Quota, ...] = ()

    def __post_init__(self) -> None:
        # Stored read-only so a provider's limits cannot be changed by whoever reads them.
        object.__setattr__(self, "media_kinds", frozenset(self.media_kinds))
        for name in ("max_media_bytes", "max_media_duration_ms", "max_media_per_kind"):
            object.__setattr__(self, name, _frozen_mapping(getattr(self, name)))

    def __hash__(self) -> int:
        return hash((self.max_text_length, self.text_unit, self.max_media, self.media_kinds, self.max_thread_parts))

    def measure(self, text: str) -> int:
        """The length of ``text`` in this platform's unit (``text_unit``)."""
        return measure(text, self.text_unit)

    @property
    def text_limits(self) -> tuple[TextLimit, ...]:
        """Every text cap, the main one first."""
        main = () if self.max_text_length is None else (TextLimit(self.max_text_length, self.text_unit),)
        return main + self.extra_text_limits


@dataclass(frozen=True)
class OAuth2Spec:
    """An OAuth 2.0 authorization-code flow. The gateway runs the handshake; the provider exchanges the code."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = False  # send an S256 code challenge (X requires it)
    scope_separator: str = " "
    refreshable: bool = True  # the platform issues refresh tokens the provider can use
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    # The authorize URL's name for the client id: TikTok calls it ``client_key``.
    client_id_param: str = "client_id"

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_authorize_params", _frozen_mapping(self.extra_authorize_params))

    def __hash__(self) -> int:
        return hash((self.authorize_url, self.token_url, self.scopes, self.pkce))

    def authorization_url(self, *, client_id: str, redirect_uri: str, state: str, code_challenge: str | None = None) -> str:
        """The URL to send the user to. ``code_challenge`` is the S256 challenge, required when ``pkce``."""
        if self.pkce and not code_challenge:
            raise ValueError("this flow uses PKCE: a code_challenge is required")
        params = {
            "response_type": "code",
            self.client_id_param: client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            **self.extra_authorize_params,
        }
        if self.scopes:
            params["scope"] = self.scope_separator.join(self.scopes)
        if code_challenge:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = "S256"
        separator = "&" if "?" in self.authorize_url else "?"
        return self.authorize_url + separator + urllib.parse.urlencode(params)


def _is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine: ``localhost`` or a loopback address (no DNS is asked)."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CredentialField:
    """One field of a credentials form (app password, webhook URL, API key…).

    ``secret`` fields are never shown back; ``kind`` says how the value is checked (``url``: an
    absolute https URL; ``integer``; ``choice``: one of ``choices``); ``pattern`` is a regular
    expression the whole value must match. ``loopback_http`` lets a ``url`` field also take plain
    http to this machine (``localhost``, 127.0.0.0/8, ``::1``): for a platform server a developer
    or a test runs locally (a Bluesky PDS), never for anything reached over a network.
    """

    name: str
    label: str
    secret: bool = False
    required: bool = True
    kind: CredentialKind = "string"
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    default: str | None = None
    help: str = ""
    loopback_http: bool = False

    def problem_with(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this field, or None when it is."""
        if self.kind == "integer" and not re.fullmatch(r"-?\d+", value):
            return "must be a whole number"
        if self.kind == "choice" and value not in self.choices:
            return "must be one of " + ", ".join(self.choices)
        if self.kind == "url":
            parts = urllib.parse.urlsplit(value)
            local = self.loopback_http and parts.scheme == "http" and _is_loopback(parts.hostname)
            if not parts.netloc or not (parts.scheme == "https" or local):
                return "must be an absolute https URL" + (" (or http to localhost)" if self.loopback_http else "")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return "is not in the expected format"
        return None


@dataclass(frozen=True)
class SettingField:
    """A per-post option the user may set for this platform (visibility, subreddit, board…).

    ``choices`` are fixed values. ``choices_from_account`` says the values depend on the account
    (its Pinterest boards, Slack channels, TikTok privacy levels): the provider lists them in
    ``Provider.setting_choices`` and the gateway offers them per account; such a setting has
    ``type="string"`` (or ``"choice"`` with no fixed ``choices``) and is checked by the platform.
    """

    name: str
    label: str
    type: SettingType = "string"
    choices: tuple[str, ...] = ()
    default: Any = None
    required: bool = False
    help: str = ""
    choices_from_account: bool = False

    def problem_with(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this setting, or None when it is."""
        if self.type == "boolean" and not isinstance(value, bool):
            return "must be true or false"
        if self.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            return "must be a whole number"
        if self.type in ("string", "choice") and not isinstance(value, str):
            return "must be a string"
        if self.type == "choice" and self.choices and value not in self.choices:
            return "must be one of " + ", ".join(self.choices)
        return None
