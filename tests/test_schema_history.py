"""The schema's history is kept, and no breaking change ships unannounced (issue 23.3).

``schema/history/<version>.graphql`` is the schema of the last release; CHANGELOG.md has a
section per release. Every change graphql-core's ``find_breaking_changes`` finds between that
schema and ``schema.graphql`` must be listed under *Unreleased* → *Breaking changes*, named by its
schema coordinate in backticks, with a ``**Migration:**``. What is removed (a field, argument,
input field or enum value) must have been ``@deprecated`` with a reason in that release. The
planted changes below show the check failing, and passing once the change is listed.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from graphql import (
    BreakingChange,
    BreakingChangeType,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    build_schema,
    find_breaking_changes,
    parse,
    print_ast,
)
from graphql.utilities import resolve_schema_coordinate

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"
HISTORY = ROOT / "schema" / "history"
CURRENT = ROOT / "schema.graphql"

RELEASE_HEADING = re.compile(r"^## (\d+\.\d+\.\d+)\b", re.MULTILINE)
UNRELEASED = "Unreleased"
BREAKING = "Breaking changes"
MIGRATION = re.compile(r"\*\*Migration:\*\*\s*\S")
# graphql-core's default reason for a bare @deprecated: it says nothing about what to use instead.
DEFAULT_REASON = "No longer supported"
REMOVALS = {BreakingChangeType.FIELD_REMOVED, BreakingChangeType.ARG_REMOVED, BreakingChangeType.VALUE_REMOVED_FROM_ENUM}


# --- reading CHANGELOG.md ------------------------------------------------------------------------


def releases(changelog: str) -> list[str]:
    """The released versions, in the order the changelog lists them (newest first)."""
    return RELEASE_HEADING.findall(changelog)


def section(text: str, title: str, level: int = 2) -> str:
    """The body of the ``#``*level heading that starts with ``title``, up to the next heading of that level or above."""
    marks = "#" * level
    match = re.search(rf"^{marks} {re.escape(title)}\b.*$", text, re.MULTILINE)
    if match is None:
        return ""
    end = re.search(rf"^#{{1,{level}}} ", text[match.end():], re.MULTILINE)
    return text[match.end(): match.end() + end.start()] if end else text[match.end():]


def bullets(text: str) -> list[str]:
    """Top-level list items, each with its continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
    return items


def listed_breaking_changes(changelog: str) -> list[str]:
    return bullets(section(section(changelog, UNRELEASED), BREAKING, level=3))


# --- naming a breaking change ------------------------------------------------------------------

ARGUMENT = re.compile(r"@?[_A-Za-z]\w*(?:\.[_A-Za-z]\w*)?\([_A-Za-z]\w*:\)")
MEMBER = re.compile(r"\b[_A-Za-z]\w*\.[_A-Za-z]\w*\b")
DIRECTIVE = re.compile(r"@[_A-Za-z]\w*")
UNION = re.compile(r"union type ([_A-Za-z]\w*)")


def coordinate(change: BreakingChange, old: GraphQLSchema) -> str:
    """The schema coordinate a change is about, read from graphql-core 3.3's description
    ("Field Query.viewer changed type…", "Argument Query.posts(first:) was removed.", "Enum value
    PostStatus.DRAFT was removed.", "Post was removed.", "Directive @x was removed.")."""
    description = change.description
    for pattern in (ARGUMENT, MEMBER, DIRECTIVE):
        if match := pattern.search(description):
            return match.group(0)
    if match := UNION.search(description):
        return match.group(1)
    for word in re.findall(r"[_A-Za-z]\w*", description):
        if word in old.type_map:
            return word
    raise AssertionError(f"no schema coordinate in {description!r}")


def deprecation_reason(schema: GraphQLSchema, where: str) -> str | None:
    resolved = resolve_schema_coordinate(schema, where)
    element = next((getattr(resolved, name) for name in ("field", "input_field", "field_argument", "enum_value") if hasattr(resolved, name)), None)
    return getattr(element, "deprecation_reason", None)


def unlisted_breaking_changes(old_sdl: str, new_sdl: str, changelog: str, release: str) -> list[str]:
    """Every breaking change from ``old_sdl`` to ``new_sdl`` that the changelog does not announce
    properly, and every removal that was not deprecated first; empty when all is in order."""
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    entries = listed_breaking_changes(changelog)
    problems = []
    for change in find_breaking_changes(old, new):
        where = coordinate(change, old)
        naming = [entry for entry in entries if f"`{where}`" in entry]
        if not naming:
            problems.append(f"{change.description} Not listed: add `{where}` with its **Migration:** under "
                            f"'## {UNRELEASED}' → '### {BREAKING}' in CHANGELOG.md.")
        elif not any(MIGRATION.search(entry) for entry in naming):
            problems.append(f"{change.description} Listed without a migration: say after **Migration:** what clients do.")
        if change.type in REMOVALS:
            reason = deprecation_reason(old, where)
            if not reason or reason == DEFAULT_REASON:
                problems.append(f"{change.description} `{where}` was not @deprecated with a reason in {release}: "
                                "deprecate it in one release, remove it in a later one.")
    return problems


# --- the real schema and changelog -------------------------------------------------------------


def _last_release() -> tuple[str, str]:
    changelog = CHANGELOG.read_text()
    version = releases(changelog)[0]
    return version, (HISTORY / f"{version}.graphql").read_text()


def test_the_changelog_has_an_unreleased_section_and_one_per_release():
    changelog = CHANGELOG.read_text()
    versions = releases(changelog)
    assert versions, "CHANGELOG.md lists no release"
    assert changelog.index(f"## {UNRELEASED}") < changelog.index(f"## {versions[0]}"), "Unreleased comes first"
    assert len(set(versions)) == len(versions)
    for version in versions:
        assert (HISTORY / f"{version}.graphql").is_file(), f"schema/history/{version}.graphql is missing"
    assert sorted(p.stem for p in HISTORY.glob("*.graphql")) == sorted(versions), "a schema in schema/history/ is no release"


def test_the_last_release_is_the_packages_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert releases(CHANGELOG.read_text())[0] == project["version"]


def test_every_breaking_change_since_the_last_release_is_listed_with_its_migration():
    version, released = _last_release()
    problems = unlisted_breaking_changes(released, CURRENT.read_text(), CHANGELOG.read_text(), version)
    assert problems == [], "\n".join(problems)


def test_the_changelog_lists_no_breaking_change_that_did_not_happen():
    """A field, argument, enum value or directive listed as breaking that is not is a typo, or a
    change that was undone. (Bare type names are left alone: an entry also quotes types it explains.)"""
    version, released = _last_release()
    old = build_schema(released)
    happened = {coordinate(change, old) for change in find_breaking_changes(old, build_schema(CURRENT.read_text()))}
    for entry in listed_breaking_changes(CHANGELOG.read_text()):
        quoted = re.findall(r"`([^`]+)`", entry.split("**Migration:**")[0])
        named = {name for name in quoted if ARGUMENT.fullmatch(name) or MEMBER.fullmatch(name) or DIRECTIVE.fullmatch(name)}
        assert named <= happened, f"{sorted(named - happened)} listed as breaking since {version}, but not: {entry[:120]}"


def test_the_release_schema_is_the_baseline_it_says_it_is():
    """0.1.0 is schema.graphql at commit abdd19a; the file says so, and is a schema on its own."""
    text = (HISTORY / "0.1.0.graphql").read_text()
    assert "abdd19a" in text.split("\n\n", 1)[0]
    assert build_schema(text).query_type is not None


# --- planted changes: the check fails, then passes once they are announced properly -----------

RELEASE = "0.1.0"
LISTED_NULLABLE = """## Unreleased

### Breaking changes

- `Query.viewer`, `Query.apiKeys`, `Query.providers`, `Query.accounts`, `Query.oauthRedirectUris`,
  `Query.media`, `Query.posts`, `Query.validatePost`, `Query.jobs`: nullable now. **Migration:** check for null.
"""


def _changelog(*extra: str) -> str:
    return LISTED_NULLABLE + "".join(f"- {line}\n" for line in extra) + f"\n## {RELEASE}\n\nThe first release.\n"


def _without_field(sdl: str, type_name: str, field_name: str) -> str:
    document = parse(sdl)
    definitions = []
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == type_name:
            fields = tuple(f for f in definition.fields if f.name.value != field_name)
            assert len(fields) < len(definition.fields), f"{type_name}.{field_name} is not in the schema"
            definition = ObjectTypeDefinitionNode(
                name=definition.name, description=definition.description, interfaces=definition.interfaces,
                directives=definition.directives, fields=fields,
            )
        definitions.append(definition)
    return print_ast(document.__class__(definitions=tuple(definitions)))


def _deprecated(sdl: str, type_name: str, field_name: str, reason: str | None) -> str:
    directive = "@deprecated" if reason is None else f"@deprecated(reason: {json.dumps(reason)})"
    block = re.search(rf"^type {type_name}\b[^{{]*\{{.*?^\}}", sdl, re.MULTILINE | re.DOTALL)
    assert block, type_name
    body, marked = re.subn(rf"^(  {field_name}\b[^\n]*)$", rf"\1 {directive}", block.group(0), count=1, flags=re.MULTILINE)
    assert marked == 1, f"{type_name}.{field_name} is not in the schema"
    return sdl[: block.start()] + body + sdl[block.end():]


def test_the_planted_schemas_are_the_real_ones():
    assert unlisted_breaking_changes(_last_release()[1], CURRENT.read_text(), _changelog(), RELEASE) == []


def test_a_planted_removal_fails_until_it_is_listed_with_a_migration_after_a_deprecation():
    released, current = _last_release()[1], CURRENT.read_text()
    removed = _without_field(current, "Account", "displayName")

    unlisted = unlisted_breaking_changes(released, removed, _changelog(), RELEASE)
    assert len(unlisted) == 2, unlisted
    assert "Field Account.displayName was removed." in unlisted[0] and "Not listed: add `Account.displayName`" in unlisted[0]
    assert "was not @deprecated with a reason in 0.1.0" in unlisted[1]

    without_migration = unlisted_breaking_changes(released, removed, _changelog("`Account.displayName`: removed."), RELEASE)
    assert any("Listed without a migration" in p for p in without_migration), without_migration

    listed = _changelog("`Account.displayName`: removed. **Migration:** show `handle` instead.")
    undeprecated = unlisted_breaking_changes(released, removed, listed, RELEASE)
    assert len(undeprecated) == 1 and "`Account.displayName` was not @deprecated with a reason in 0.1.0" in undeprecated[0]

    # A bare @deprecated has graphql-core's default reason, which names no replacement: not enough.
    bare = unlisted_breaking_changes(_deprecated(released, "Account", "displayName", None), removed, listed, RELEASE)
    assert len(bare) == 1 and "not @deprecated with a reason" in bare[0]

    deprecated_first = _deprecated(released, "Account", "displayName", "Use `handle`.")
    assert unlisted_breaking_changes(deprecated_first, removed, listed, RELEASE) == []


def test_a_planted_type_change_fails_until_it_is_listed():
    """Not a removal: listing it with its migration is all it takes."""
    released, current = _last_release()[1], CURRENT.read_text()
    changed = current.replace("  handle: String!\n", "  handle: Int!\n", 1)
    assert changed != current
    [problem] = unlisted_breaking_changes(released, changed, _changelog(), RELEASE)
    assert "Account.handle" in problem and "Not listed" in problem
    listed = _changelog("`Account.handle`: an Int now. **Migration:** read it as a number.")
    assert unlisted_breaking_changes(released, changed, listed, RELEASE) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("type Query { a(x: Int, y: Int): Int }", "type Query { a(x: Int): Int }", "Query.a(y:)"),
        ("type Query { a(x: Int): Int }", "type Query { a(x: Int, y: Int!): Int }", "Query.a(y:)"),
        ("type Query { a: E } enum E { ONE TWO }", "type Query { a: E } enum E { ONE }", "E.TWO"),
        ("type Query { a: Int } type T { c: Int }", "type Query { a: Int }", "T"),
        ("type Query { a: U } union U = A | B type A { a: Int } type B { b: Int }", "type Query { a: U } union U = A type A { a: Int } type B { b: Int }", "U"),
        ("type Query { a: I } interface I { a: Int } type T implements I { a: Int }", "type Query { a: I } interface I { a: Int } type T { a: Int }", "T"),
        ("type Query { a(i: In): Int } input In { x: Int }", "type Query { a(i: In): Int } input In { x: Int y: Int! }", "In.y"),
        ("type Query { a: T } type T { b: Int }", "type Query { a: T } interface T { b: Int }", "T"),
        ("directive @d on FIELD type Query { a: Int }", "type Query { a: Int }", "@d"),
        ("directive @d(x: Int) on FIELD type Query { a: Int }", "directive @d on FIELD type Query { a: Int }", "@d(x:)"),
    ],
    ids=["argument-removed", "required-argument-added", "enum-value-removed", "type-removed", "union-member-removed",
         "interface-removed", "required-input-field-added", "type-changed-kind", "directive-removed", "directive-argument-removed"],
)
def test_every_kind_of_breaking_change_is_named_by_its_coordinate(old, new, expected):
    old_schema = build_schema(old)
    [change] = find_breaking_changes(old_schema, build_schema(new))
    assert coordinate(change, old_schema) == expected, change.description
