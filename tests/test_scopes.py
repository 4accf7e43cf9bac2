"""The scope catalogue and grammar: every scope the API checks can be minted, held and checked.

The catalogue is written out here on purpose: dropping or renaming a scope in
``gateway/auth/scopes.py`` must fail a test, because keys in the wild hold those strings.
"""

import ast
import re
from pathlib import Path

import pytest

from gateway.auth.keys import authenticate
from gateway.auth.scopes import KNOWN_SCOPES, SCOPE_PATTERN, covers, grants, has_scope, is_valid_scope
from tests.conftest import make_org_with_key

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = [
    "org:read", "org:admin", "keys:read", "keys:write", "providers:read", "accounts:read", "accounts:write",
    "media:read", "media:write", "posts:read", "posts:write", "posts:publish", "posts:approve",
    "campaigns:read", "campaigns:write", "analytics:read", "jobs:read", "jobs:write", "ads:read",
    "ads:write:campaigns", "ads:write:budgets", "ads:write:creative", "ads:write:lifecycle", "webhooks:read", "webhooks:write",
    "audit:read", "approvals:review", "approvals:client",
]


def test_the_catalogue_is_the_one_keys_hold():
    assert list(KNOWN_SCOPES) == CATALOGUE


async def test_every_known_scope_can_be_minted_and_checked(runtime):
    for scope in CATALOGUE:
        created = await make_org_with_key(runtime, name=scope, scopes=[scope])
        async with runtime.database.read() as session:
            principal = await authenticate(session, created.secret)
        assert principal.scopes == (scope,)
        assert has_scope(principal.scopes, scope)
        others = [other for other in CATALOGUE if other != scope]
        assert not any(has_scope(principal.scopes, other) for other in others), scope


SCOPE_SHAPED = re.compile(r"[a-z]+:[a-z_]+(?::[a-z_]+)?")


def _scopes_the_code_names() -> set[str]:
    """Every scope-shaped string literal in gateway/ and schema/ outside the catalogue's module:
    the scopes resolvers ``require`` and the services check."""
    found = set()
    for package in ("gateway", "schema"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "gateway" / "auth" / "scopes.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SCOPE_SHAPED.fullmatch(node.value):
                    found.add(node.value)
    return found


def test_every_scope_the_code_names_is_in_the_catalogue():
    named = _scopes_the_code_names()
    assert {"posts:read", "org:admin", "keys:write"} <= named, named  # the scan finds them, or it proves nothing
    assert named <= set(CATALOGUE), named - set(CATALOGUE)


@pytest.mark.parametrize("scope", CATALOGUE)
def test_every_known_scope_obeys_the_grammar_and_its_wildcards(scope):
    assert SCOPE_PATTERN.fullmatch(scope) and is_valid_scope(scope)
    stem = scope.rsplit(":", 1)[0]
    assert grants(f"{stem}:*", scope) and grants("*", scope)
    assert is_valid_scope(f"{stem}:*")


@pytest.mark.parametrize(
    "scope",
    ["", "posts", "posts:", ":read", "posts:*:read", "posts::read", "POSTS:read", "posts:read ", "posts:read\n",
     "1posts:read", "posts-x:read", "**", "posts:**", "posts:fly", "nothing:*"],
    ids=repr,
)
def test_malformed_or_unknown_scopes_are_refused(scope):
    assert not is_valid_scope(scope)


def test_wildcards_cover_their_own_node_and_nothing_beside_it():
    assert grants("ads:write:*", "ads:write")
    assert grants("ads:*", "ads:write:budgets")
    assert not grants("ads:write:*", "ads:writes")
    assert not grants("ads:write:*", "ads")
    assert not grants("posts", "posts:read")
    assert not grants("posts:read:*", "posts")
    assert covers(["ads:*"], ["ads:write:*", "ads:read"])
    assert not covers(["ads:write:*"], ["ads:*"])
    assert covers([], []) and not covers([], ["posts:read"])


@pytest.mark.parametrize(
    ("scopes", "code", "message", "path"),
    [
        ([], "SCOPES_REQUIRED", "A key needs at least one scope.", ["scopes"]),
        (["posts:read"] * 51, "TOO_MANY_SCOPES", "A key holds at most 50 scopes.", ["scopes"]),
        (["posts:read", "posts:" + "x" * 100], "INVALID_SCOPE", f"Unknown scope {'posts:' + 'x' * 74!r}.", ["scopes", "1"]),
    ],
    ids=["none", "fifty-one", "unknown-second"],
)
def test_a_keys_scopes_are_refused_with_a_code_a_message_and_a_path(scopes, code, message, path):
    from gateway.auth.keys import validate_scopes
    from gateway.core.errors import UserError

    with pytest.raises(UserError) as refused:
        validate_scopes(scopes)
    assert (refused.value.code, refused.value.message, list(refused.value.field)) == (code, message, path)


def test_a_keys_scopes_are_kept_sorted_and_once():
    from gateway.auth.keys import validate_scopes

    assert validate_scopes(["posts:read"] * 50) == ["posts:read"]
    assert validate_scopes(["posts:write", "*", "ads:read", "posts:write"]) == ["*", "ads:read", "posts:write"]
