"""docs/events.md documents every event kind and payload field the code emits; the same kinds reach
orgEvents and webhooks.

Three holds: the registry every emitter goes through refuses a kind it does not list; the
catalogue lists exactly the registry's kinds; and a real publish, watched on the organization's
bus (what ``orgEvents`` streams) and at a webhook endpoint subscribed to ``*``, carries the same
kinds to both, each payload field documented. A static scan of the emitters adds that no kind is
named in code outside the registry, even on a path the flow below does not take.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from gateway.engine.jobs import create_job
from gateway.events import EVENT_KINDS, UnknownEventKind, record_job_event, record_org_event
from gateway.settings import load_settings
from tests.conftest import make_org_with_key
from tests.engine import new_post, publish, sandbox_account
from tests.waiting import until
from tests.webhook_receiver import running_receiver

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "docs" / "events.md"
HEADING = re.compile(r"^### `([a-z_]+(?:\.[a-z_]+)+)`$")
FIELD_ROW = re.compile(r"^\| `([A-Za-z]+)` \|")
EMITTERS = {"record_job_event": 3, "record_org_event": 2}  # the kind's position among the arguments
ENVELOPE_FIELD = "organizationId"  # every webhook's data carries it (docs/events.md says so once)


def catalogue() -> dict[str, set[str]]:
    """kind -> the payload fields its table lists."""
    found: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in CATALOGUE.read_text().splitlines():
        if heading := HEADING.match(line):
            current = found.setdefault(heading.group(1), set())
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := FIELD_ROW.match(line)):
            current.add(row.group(1))
    return found


def test_the_catalogue_documents_exactly_the_registered_kinds():
    documented = catalogue()
    assert set(documented) == EVENT_KINDS
    assert all(documented.values()), [kind for kind, fields in documented.items() if not fields]


async def test_an_emitter_cannot_use_a_kind_the_registry_does_not_list(runtime):
    owner = await make_org_with_key(runtime)
    async with runtime.database.write() as session:
        job = await create_job(session, owner.organization_id, "publish", None, 1)
        with pytest.raises(UnknownEventKind):
            await record_job_event(session, owner.organization_id, job.id, "job.exploded", {})
        with pytest.raises(UnknownEventKind):
            await record_org_event(session, owner.organization_id, "account.renamed", {})


def _module_constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets if isinstance(target, ast.Name)
    }


def _kinds_named(path: Path) -> list[tuple[int, str]]:
    """(line, kind or kind prefix) for every emitter call in a module; an unreadable kind is reported as such."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    constants = _module_constants(tree)
    named = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in EMITTERS):
            continue
        position = EMITTERS[node.func.id]
        kind = node.args[position] if len(node.args) > position else next((k.value for k in node.keywords if k.arg == "kind"), None)
        if isinstance(kind, ast.IfExp) and isinstance(kind.body, ast.Constant) and isinstance(kind.orelse, ast.Constant):
            named += [(node.lineno, kind.body.value), (node.lineno, kind.orelse.value)]  # one of two kinds
        elif isinstance(kind, ast.Constant):
            named.append((node.lineno, kind.value))
        elif isinstance(kind, ast.Name) and kind.id in constants:
            named.append((node.lineno, constants[kind.id]))
        elif isinstance(kind, ast.JoinedStr) and kind.values and isinstance(kind.values[0], ast.Constant):
            named.append((node.lineno, kind.values[0].value + "*"))  # f"target.{status}": a family
        elif "# event kinds:" in lines[node.lineno - 1]:  # a kind computed elsewhere, its family named beside the call
            named += [(node.lineno, k) for k in lines[node.lineno - 1].split("# event kinds:", 1)[1].split()]
        else:
            named.append((node.lineno, f"<unreadable: {ast.unparse(kind) if kind else None}>"))
    return named


@pytest.mark.parametrize("path", sorted((ROOT / "gateway").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_kind_named_in_the_code_is_registered(path):
    for line, kind in _kinds_named(path):
        if kind.endswith("*"):
            assert any(k.startswith(kind[:-1]) for k in EVENT_KINDS), f"{path.name}:{line}: no registered kind starts with {kind[:-1]!r}"
        else:
            assert kind in EVENT_KINDS, f"{path.name}:{line}: {kind!r} is not registered"


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/socialgate.db", data_dir=str(tmp_path), allow_private_urls=True,
    )


CREATE_ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url, eventTypes: ["*"]}) {
  webhookEndpoint { id } secret userErrors { code } } }"""


async def test_a_publish_carries_the_same_documented_events_to_org_events_and_webhooks(api, org):
    documented = catalogue()
    async with running_receiver() as receiver:
        made = (await api.graphql(CREATE_ENDPOINT, {"url": receiver.url("/all")}, key=org.secret))["data"]["createWebhookEndpoint"]
        subscription = api.runtime.events.subscribe(org.organization_id)  # what orgEvents streams
        account = await sandbox_account(api, org.secret)
        post_id = await new_post(api, org.secret, [account])
        await publish(api, org.secret, post_id)
        on_the_bus = []
        while not on_the_bus or on_the_bus[-1].kind != "job.succeeded":
            on_the_bus.append(await subscription.next())
        subscription.close()
        await until(lambda: len(receiver.at("/all")) >= len(on_the_bus))
        delivered = [Webhook(made["secret"]).verify(r.body, r.headers) for r in receiver.at("/all")]

    assert Counter(e.kind for e in on_the_bus) == Counter(d["type"] for d in delivered)
    assert {"account.connected", "job.queued", "target.publishing", "target.published", "post.status_changed", "job.succeeded"} <= {
        e.kind for e in on_the_bus
    }
    for event in on_the_bus:
        assert set(event.payload) <= documented[event.kind], (event.kind, set(event.payload) - documented[event.kind])
    for body in delivered:
        assert set(body["data"]) - {ENVELOPE_FIELD} <= documented[body["type"]]
        assert body["data"][ENVELOPE_FIELD] == org.organization_id
