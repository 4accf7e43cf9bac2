"""``Account.settingChoices``: per-account values of a setting, asked of the platform, cached briefly, errors with codes."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import update

from gateway.storage import Account
from providers import (
    AccountProfile,
    AuthExpired,
    Capabilities,
    CredentialField,
    Provider,
    PublishResult,
    RateLimited,
    SettingChoice,
    SettingField,
    TransientError,
    hookimpl,
)

CHOICES = """query($id: ID!, $setting: String!, $refresh: Boolean!) {
  account(id: $id) { settingChoices(setting: $setting, refresh: $refresh) { value label extra } }
}"""


class Boards(Provider):
    """A Pinterest-like platform: the board a pin goes to is one of the account's boards."""

    id = "boards"
    name = "Boards"
    capabilities = Capabilities()
    auth = (CredentialField("token", "Token", secret=True),)
    settings = (
        SettingField("board", "Board", type="choice", choices_from_account=True, required=True),
        SettingField("alt", "Alt text", type="string"),
    )

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []
        self.answers: list[object] = []

    async def connect(self, ctx, credentials):
        return AccountProfile(external_id="u1", handle="pinner")

    async def publish(self, ctx, request):
        return PublishResult(platform_post_id="p1")

    async def setting_choices(self, ctx, setting):
        self.asked.append((setting, ctx.credential("token")))
        answer = self.answers.pop(0) if self.answers else [SettingChoice("b1", "Recipes", {"privacy": "PUBLIC"}), SettingChoice("b2")]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _connected(api, org):
    provider = Boards()

    @hookimpl
    def register_providers():
        return [provider]

    api.runtime.plugins.add("boards-test-plugin", SimpleNamespace(register_providers=register_providers))
    body = await api.graphql(
        'mutation { connectAccount(input: {provider: "boards", credentials: {token: "tok-secret-123"}}) { account { id } userErrors { code } } }',
        key=org.secret,
    )
    return provider, body["data"]["connectAccount"]["account"]["id"]


async def _choices(api, org, account_id, setting="board", refresh=False, key=None):
    return await api.graphql(CHOICES, {"id": account_id, "setting": setting, "refresh": refresh}, key=key or org.secret)


async def test_choices_come_from_the_platform_and_are_kept_briefly(api, org):
    provider, account_id = await _connected(api, org)
    body = await _choices(api, org, account_id)
    assert "errors" not in body, body
    assert body["data"]["account"]["settingChoices"] == [
        {"value": "b1", "label": "Recipes", "extra": {"privacy": "PUBLIC"}},
        {"value": "b2", "label": "b2", "extra": {}},
    ]
    assert provider.asked == [("board", "tok-secret-123")]  # the account's own credentials
    await _choices(api, org, account_id)
    assert len(provider.asked) == 1  # the second look is served from the cache
    provider.answers.append([SettingChoice("b3", "New board")])
    body = await _choices(api, org, account_id, refresh=True)
    assert [c["value"] for c in body["data"]["account"]["settingChoices"]] == ["b3"]
    assert len(provider.asked) == 2
    described = await api.graphql('{ provider(id: "boards") { settingFields { name choicesFromAccount } } }', key=org.secret)
    assert described["data"]["provider"]["settingFields"] == [
        {"name": "board", "choicesFromAccount": True},
        {"name": "alt", "choicesFromAccount": False},
    ]


async def test_a_setting_without_account_choices_is_bad_input_and_a_qualified_one_reaches_the_provider(api, org):
    provider, account_id = await _connected(api, org)
    qualified = await _choices(api, org, account_id, "board:sections-of-b1")
    assert "errors" not in qualified and provider.asked == [("board:sections-of-b1", "tok-secret-123")]
    provider.asked.clear()
    for setting in ("alt", "nope", "alt:board"):
        body = await _choices(api, org, account_id, setting)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "setting"
        assert "board" in error["message"]
    assert provider.asked == []


async def test_platform_failures_have_stable_codes_and_never_echo_the_token(api, org):
    provider, account_id = await _connected(api, org)
    provider.answers += [RateLimited(retry_after=42), TransientError("upstream 502")]
    limited = await _choices(api, org, account_id)
    assert limited["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert limited["errors"][0]["extensions"]["retryAfter"] == 42
    failed = await _choices(api, org, account_id)
    assert failed["errors"][0]["extensions"]["code"] == "PLATFORM_ERROR"
    assert "tok-secret-123" not in str(limited) + str(failed)
    # An expired token the platform keeps refusing (no refresh possible for a credentials form).
    provider.answers.append(AuthExpired("token revoked"))
    expired = await _choices(api, org, account_id)
    assert expired["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"


async def test_disconnected_accounts_and_other_orgs_accounts(api, org):
    provider, account_id = await _connected(api, org)
    from tests.conftest import make_org_with_key

    other = await make_org_with_key(api.runtime, "Other")
    body = await _choices(api, org, account_id, key=other.secret)
    assert body["data"]["account"] is None  # another organization's account does not exist for this key
    async with api.runtime.database.write() as session:
        await session.execute(update(Account).where(Account.id == account_id).values(status="disconnected"))
    body = await _choices(api, org, account_id)
    assert body["errors"][0]["extensions"]["code"] == "ACCOUNT_DISCONNECTED"
    assert provider.asked == []
