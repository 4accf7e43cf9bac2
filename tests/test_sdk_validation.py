"""validate_draft, validate_credentials and check_declarations report every problem, with stable codes."""

from datetime import timedelta

import pytest

from providers import (
    Capabilities,
    CredentialField,
    DraftMedia,
    Limits,
    OAuth2Spec,
    PostDraft,
    Processing,
    Provider,
    Quota,
    SettingChoice,
    SettingField,
    TextUnit,
    validate_credentials,
    validate_draft,
)
from providers.declarations import TextLimit
from providers.validation import check_declarations

MB = 1024 * 1024


class Bluesky(Provider):
    """Bluesky's published limits (lexicons post.json and embed/images.json)."""

    id = "bluesky-like"
    name = "Bluesky"
    capabilities = Capabilities(threads=True)
    limits = Limits(
        max_text_length=300,
        text_unit=TextUnit.GRAPHEMES,
        extra_text_limits=(TextLimit(3000, TextUnit.UTF8_BYTES),),
        max_media=4,
        media_kinds=frozenset({"image", "video"}),
        max_media_bytes={"image": 1_000_000},
        max_media_duration_ms={"video": 60_000},
        max_media_per_kind={"video": 1},
        max_thread_parts=3,
    )
    auth = (
        CredentialField("identifier", "Handle", pattern=r"[a-z0-9.-]+"),
        CredentialField("app_password", "App password", secret=True, pattern=r"[a-z0-9]{4}(-[a-z0-9]{4}){3}"),
        CredentialField("pds", "PDS URL", kind="url", required=False),
    )
    settings = (
        SettingField("lang", "Language", type="choice", choices=("en", "ja"), required=True),
        SettingField("labels", "Adult content", type="boolean", default=False),
    )

    async def publish(self, ctx, request):
        raise AssertionError("never called here")

    async def connect(self, ctx, credentials):
        raise AssertionError("never called here")


def codes(issues):
    return [issue.code for issue in issues]


def test_a_good_draft_has_no_issues():
    draft = PostDraft(text="hi " + "\U0001F468\u200D\U0001F469\u200D\U0001F467" * 160, settings={"lang": "en"})
    assert validate_draft(Bluesky(), draft) == []


def test_every_problem_is_reported_at_once():
    draft = PostDraft(
        text="x" * 301,
        media=(
            DraftMedia("image", "image/png", 2 * MB),
            DraftMedia("document", "application/pdf", 10),
            DraftMedia("video", "video/mp4", 10, duration_ms=90_000),
            DraftMedia("video", "video/mp4", 10),
            DraftMedia("image", "image/png", 10),
        ),
        settings={"lang": "fr", "labels": "yes", "colour": "red"},
        thread=("two", "three", ""),
    )
    found = validate_draft(Bluesky(), draft)
    assert sorted(codes(found)) == sorted(
        [
            "TEXT_TOO_LONG",
            "TOO_MANY_MEDIA",  # 5 > 4
            "MEDIA_TOO_LARGE",
            "MEDIA_KIND_NOT_SUPPORTED",
            "MEDIA_TOO_LONG",
            "TOO_MANY_MEDIA",  # 2 videos > 1
            "THREAD_TOO_LONG",
            "EMPTY_POST",  # the empty thread part
            "SETTING_INVALID",
            "SETTING_INVALID",
            "UNKNOWN_SETTING",
        ]
    )
    by_code = {issue.code: issue for issue in found}
    assert by_code["TEXT_TOO_LONG"].message == "The text is 301 graphemes; Bluesky allows at most 300 graphemes."
    assert by_code["TEXT_TOO_LONG"].field == ("text",)
    assert by_code["MEDIA_TOO_LARGE"].field == ("media", "0")
    assert "2 MB" in by_code["MEDIA_TOO_LARGE"].message and "976.6 KB" in by_code["MEDIA_TOO_LARGE"].message
    assert by_code["MEDIA_KIND_NOT_SUPPORTED"].field == ("media", "1")
    assert by_code["UNKNOWN_SETTING"].field == ("settings", "colour")
    assert by_code["EMPTY_POST"].field == ("thread", "2")


def test_each_text_cap_counts_in_its_own_unit():
    draft = PostDraft(text="日本語" * 100 + "語" * 100 + "x" * 0, settings={"lang": "ja"})  # 400 graphemes, 1200 bytes
    messages = [i.message for i in validate_draft(Bluesky(), draft)]
    assert messages == ["The text is 400 graphemes; Bluesky allows at most 300 graphemes."]
    wide = PostDraft(text="\U0001F600" * 280 + "語" * 20, settings={"lang": "ja"})  # 300 graphemes, 1180 bytes
    assert validate_draft(Bluesky(), wide) == []
    heavy = PostDraft(text="\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466" * 121, settings={"lang": "ja"})
    assert [i.message for i in validate_draft(Bluesky(), heavy)] == ["The text is 3025 bytes; Bluesky allows at most 3000 bytes."]


def test_missing_setting_media_required_and_threads_not_supported():
    class PhotoOnly(Bluesky):
        id = "photo-only"
        name = "Photos"
        capabilities = Capabilities()
        limits = Limits(max_text_length=2200, max_media=10, media_kinds=frozenset({"image"}), media_required=True)

    found = validate_draft(PhotoOnly(), PostDraft(text="caption", thread=("more",)))
    assert codes(found) == ["MEDIA_REQUIRED", "THREADS_NOT_SUPPORTED", "SETTING_REQUIRED"]
    assert codes(validate_draft(PhotoOnly(), PostDraft(text=" "))) == ["EMPTY_POST", "MEDIA_REQUIRED", "SETTING_REQUIRED"]


def test_credentials_form_is_checked_field_by_field():
    provider = Bluesky()
    assert validate_credentials(provider, {"identifier": "alice.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}) == []
    found = validate_credentials(provider, {"identifier": "Alice!", "pds": "http://pds.local", "token": "x"})
    assert [(i.field, i.code) for i in found] == [
        (("credentials", "token"), "UNKNOWN_CREDENTIAL"),
        (("credentials", "identifier"), "CREDENTIAL_INVALID"),
        (("credentials", "app_password"), "CREDENTIAL_REQUIRED"),
        (("credentials", "pds"), "CREDENTIAL_INVALID"),
    ]
    assert found[3].message == "PDS URL must be an absolute https URL."


def test_oauth_provider_takes_no_credentials_form():
    class Oauthy(Provider):
        id = "oauthy"
        name = "OAuthy"
        auth = OAuth2Spec(authorize_url="https://x.example/authorize", token_url="https://x.example/token", pkce=True)

    (issue,) = validate_credentials(Oauthy(), {"token": "x"})
    assert issue.code == "CREDENTIALS_NOT_ACCEPTED"
    assert Oauthy().auth_kind == "oauth2"


def test_oauth_authorization_url_carries_pkce_and_scopes():
    spec = OAuth2Spec(
        authorize_url="https://x.com/i/oauth2/authorize",
        token_url="https://api.x.com/2/oauth2/token",
        scopes=("tweet.read", "tweet.write", "offline.access"),
        pkce=True,
    )
    url = spec.authorization_url(client_id="cid", redirect_uri="https://gw.example/cb", state="s1", code_challenge="abc")
    assert url == (
        "https://x.com/i/oauth2/authorize?response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fgw.example%2Fcb"
        "&state=s1&scope=tweet.read+tweet.write+offline.access&code_challenge=abc&code_challenge_method=S256"
    )
    with pytest.raises(ValueError):
        spec.authorization_url(client_id="cid", redirect_uri="https://gw.example/cb", state="s1")


def test_inconsistent_declarations_are_named():
    class Broken(Provider):
        id = "Not An Id"
        name = ""
        capabilities = Capabilities(threads=True, delete=True, ads=True)
        limits = Limits(max_media=2, media_kinds=frozenset({"hologram"}), max_media_bytes={"video": 5})
        auth = (CredentialField("k", "Key"), CredentialField("k", "Key again"))
        settings = (SettingField("mode", "Mode", type="choice"),)

        async def publish(self, ctx, request):
            raise AssertionError

        async def fetch_metrics(self, ctx, ids):
            return []

    found = {(".".join(i.field), i.code) for i in check_declarations(Broken())}
    assert found == {
        ("id", "INVALID_ID"),
        ("name", "INVALID_NAME"),
        ("limits", "INVALID_LIMIT"),  # unknown kind
        ("limits", "INCONSISTENT_LIMITS"),  # bytes for a kind not accepted; threads without parts
        ("auth", "DUPLICATE_FIELD"),
        ("auth", "MISSING_OPERATION"),  # no connect
        ("settings.mode", "INVALID_SETTING"),
        ("capabilities.delete", "MISSING_OPERATION"),
        ("capabilities.metrics", "UNDECLARED_OPERATION"),
        ("capabilities.ads", "INCONSISTENT_CAPABILITIES"),
    }
    assert check_declarations(Bluesky()) == []
    assert check_declarations("not a provider")[0].code == "NOT_A_PROVIDER"


def test_metrics_may_be_only_the_accounts():
    """A platform with no per-post figures (Google Business Profile) declares account figures only,
    backed by fetch_account_metrics; fetch_metrics is then neither needed nor allowed."""
    from providers import MetricsSpec

    class LocationOnly(Bluesky):
        capabilities = Capabilities(threads=True, metrics=True)
        metrics = MetricsSpec(account=("followers",), min_interval_seconds=3600)

        async def fetch_account_metrics(self, ctx):
            raise AssertionError

    assert check_declarations(LocationOnly()) == []

    class WithoutTheOperation(Bluesky):
        capabilities = Capabilities(threads=True, metrics=True)
        metrics = MetricsSpec(account=("followers",), min_interval_seconds=3600)

    assert {(".".join(i.field), i.code) for i in check_declarations(WithoutTheOperation())} == {("metrics.account", "MISSING_OPERATION")}

    class PostFiguresWithoutFetch(WithoutTheOperation):
        metrics = MetricsSpec(post=("likes",), min_interval_seconds=3600)

    assert ("capabilities.metrics", "MISSING_OPERATION") in {(".".join(i.field), i.code) for i in check_declarations(PostFiguresWithoutFetch())}


def test_declarations_are_frozen():
    provider = Bluesky()
    with pytest.raises(AttributeError):
        provider.limits = Limits()
    with pytest.raises(AttributeError):
        provider.approval = "nothing"
    with pytest.raises(AttributeError):
        provider.limits.max_media = 10
    with pytest.raises(TypeError):
        provider.limits.max_media_bytes["image"] = 1


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://pds.example", True),
        ("http://127.0.0.1:2583", True),
        ("http://127.8.9.10", True),
        ("http://localhost:2583", True),
        ("http://[::1]:2583", True),
        ("http://pds.example", False),
        ("http://10.0.0.5", False),
        ("http://localhost.example.com", False),
        ("ftp://127.0.0.1", False),
        ("http://", False),
    ],
)
def test_a_url_field_may_take_plain_http_to_this_machine_only(url, accepted):
    local = CredentialField("service", "PDS URL", kind="url", loopback_http=True)
    assert (local.problem_with(url) is None) is accepted
    assert local.problem_with("http://pds.example") == "must be an absolute https URL (or http to localhost)"
    # Without the flag nothing changes: plain http is refused, loopback or not.
    assert CredentialField("service", "PDS URL", kind="url").problem_with("http://127.0.0.1:2583") == "must be an absolute https URL"


def test_processing_and_account_choices_are_declared_with_their_operations():
    """``capabilities.processing`` goes with ``poll``, ``choices_from_account`` with ``setting_choices``."""

    class Promises(Provider):
        id = "promises"
        name = "Promises"
        capabilities = Capabilities(processing=True)
        settings = (SettingField("board", "Board", type="choice", choices_from_account=True),)

        async def publish(self, ctx, request):
            raise AssertionError

    class Keeps(Promises):
        id = "keeps"

        async def poll(self, ctx, request, handle):
            raise AssertionError

        async def setting_choices(self, ctx, setting):
            return [SettingChoice("b1", "Recipes")]

    class Undeclared(Provider):
        id = "undeclared"
        name = "Undeclared"

        async def publish(self, ctx, request):
            raise AssertionError

        async def poll(self, ctx, request, handle):
            raise AssertionError

        async def setting_choices(self, ctx, setting):
            return []

    assert {(".".join(i.field), i.code) for i in check_declarations(Promises())} == {
        ("capabilities.processing", "MISSING_OPERATION"),
        ("settings.board", "MISSING_OPERATION"),
    }
    assert check_declarations(Keeps()) == []
    assert {(".".join(i.field), i.code) for i in check_declarations(Undeclared())} == {
        ("capabilities.processing", "UNDECLARED_OPERATION"),
        ("settings", "UNDECLARED_OPERATION"),
    }
    # Values of an account-dependent choice are the platform's to check, not a fixed list's.
    assert Keeps.settings[0].problem_with("any-board-id") is None


def test_processing_handles_are_plain_data_and_quotas_meter_units():
    with pytest.raises(TypeError, match="JSON-serialisable"):
        Processing(handle={"at": object()})
    waiting = Processing(handle={"container_id": "17890"}, check_after=timedelta(seconds=20), stage="container")
    with pytest.raises(TypeError):
        waiting.handle["container_id"] = "other"  # type: ignore[index]
    assert (waiting.published, waiting.deadline) == (False, timedelta(hours=24))
    assert Quota(count=10_000, period_seconds=86_400, scope="app", cost=1_600).cost == 1_600

    class Overpriced(Provider):
        id = "overpriced"
        name = "Overpriced"
        limits = Limits(quotas=(Quota(count=100, period_seconds=60, cost=101), Quota(count=0, period_seconds=60)))

        async def publish(self, ctx, request):
            raise AssertionError

    issues = [i for i in check_declarations(Overpriced()) if i.code == "INVALID_LIMIT"]
    assert len(issues) == 2 and "more than the quota's whole 100" in issues[0].message
