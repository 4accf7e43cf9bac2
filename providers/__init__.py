"""socialgate's provider SDK: everything a platform plugin needs, and nothing else of socialgate.

Start with ``docs/writing-a-provider.md``. The pieces:

- ``Provider`` (subclass it) and its declarations: ``Capabilities``, ``Limits`` (+ ``TextUnit``),
  ``OAuth2Spec`` or ``CredentialField`` forms, ``SettingField``.
- Call types: ``PublishRequest``/``PublishMedia``/``ThreadPart`` in, ``PublishResult`` (or
  ``Processing`` for media the platform needs minutes for, then ``Provider.poll``), ``SettingChoice``,
  ``MetricSnapshot``/``AccountMetricSnapshot`` (declared by a ``MetricsSpec``), ``TokenSet``, ``AccountProfile`` out; ``ProviderContext`` for every call.
- Ads: ``AdsAdapter`` and its records; ``Money`` (exact minor units, ``providers.money``).
- Errors: ``RateLimited``, ``TransientError``, ``AuthExpired``, ``Rejected``, ``Unconfirmed``.
- ``hookimpl``: the marker for ``register_providers``, ``validate_post`` and ``on_event``.
- ``publish_thread`` (+ ``PostedPart``): post a thread as a chain of replies, resumable after a failure.
- ``providers.encryption``: ``EncryptedMedia`` (AES-256-CBC) for platforms that take only encrypted uploads (Snapchat).
- ``providers.testing``: the conformance kit to run from your own pytest suite.
"""

from providers.ads import AdAccountInfo, AdAccountRef, AdChanges, AdInsight, AdLevel, AdObject, AdsAdapter, AdSpec, AdStatus
from providers.calls import (
    AccountProfile,
    BytesSource,
    Event,
    FileSource,
    MediaSource,
    PublishMedia,
    PublishRequest,
    PublishResult,
    ThreadPart,
    TokenSet,
)
from providers.context import CallPhase, ProviderContext, new_http_client
from providers.declarations import (
    Capabilities,
    CredentialField,
    Limits,
    OAuth2Spec,
    Quota,
    SettingField,
    TextLimit,
)
from providers.errors import (
    AuthExpired,
    NotSupported,
    ProviderError,
    RateLimited,
    Rejected,
    TransientError,
    Unconfirmed,
)
from providers.hookspecs import hookimpl
from providers.metrics import (
    ACCOUNT_FIGURES,
    ENGAGEMENT_FIGURES,
    POST_FIGURES,
    AccountMetricSnapshot,
    MetricSnapshot,
    MetricsSpec,
    reported,
)
from providers.money import AmountNotRepresentable, Money, UnknownCurrency
from providers.processing import Processing, SettingChoice
from providers.provider import Provider
from providers.store import MemoryProviderStore, ProviderStore
from providers.text import TextUnit, measure
from providers.threads import PostedPart, publish_thread
from providers.validation import DraftMedia, Issue, PostDraft, validate_credentials, validate_draft

__all__ = [
    "ACCOUNT_FIGURES", "ENGAGEMENT_FIGURES", "POST_FIGURES", "AccountMetricSnapshot", "MetricsSpec", "reported",
    "AccountProfile", "AdAccountInfo", "AdAccountRef", "AdChanges", "AdInsight", "AdLevel", "AdObject", "AdSpec",
    "AdStatus", "AdsAdapter", "AmountNotRepresentable", "AuthExpired", "UnknownCurrency",
    "BytesSource", "CallPhase", "Capabilities", "CredentialField", "DraftMedia", "Event", "FileSource", "Issue",
    "Limits", "MediaSource", "MemoryProviderStore", "MetricSnapshot", "Money", "NotSupported",
    "OAuth2Spec", "PostDraft", "PostedPart", "Provider", "ProviderContext", "ProviderError", "ProviderStore",
    "Processing", "PublishMedia", "PublishRequest", "PublishResult", "SettingChoice", "Quota", "RateLimited", "Rejected",
    "SettingField", "TextLimit", "TextUnit", "ThreadPart", "TokenSet", "TransientError",
    "Unconfirmed", "hookimpl", "measure", "new_http_client", "publish_thread", "validate_credentials", "validate_draft",
]
