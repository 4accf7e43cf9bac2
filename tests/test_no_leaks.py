"""What a request leaves in module-level caches must not keep a runtime, its database or a schema
alive once they are done with: tests build hundreds of them, and a deployment reloads."""

from __future__ import annotations

import gc
import weakref

import httpx

from gateway.app import create_app
from gateway.settings import load_settings
from tests.lifespan import lifespan_of
from tests.test_accounts_api import connect
from tests.test_execution import GatewayExecution, _schema

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } userErrors { code } } }"


async def test_a_runtime_its_database_and_its_schema_are_freed_after_use(tmp_path):
    """A mutation files its final audit entry through a per-database writer, and the schema's leaf
    fields carry their plans: neither may keep the app's objects once the app is gone."""
    from tests.conftest import ApiClient, make_org_with_key

    app = create_app(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/leak.db", data_dir=str(tmp_path), run_scheduler=False))
    async with lifespan_of(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as http:
            api = ApiClient(http=http, runtime=app.state.runtime)
            org = await make_org_with_key(api.runtime)
            account = (await connect(api, org.secret))["account"]["id"]
            body = await api.graphql(CREATE, {"i": {"text": "kept?", "targets": [{"accountId": account}]}}, key=org.secret)
            assert body["data"]["createPost"]["userErrors"] == []
            page = await api.graphql("{ posts(first: 5) { nodes { id text status } } }", key=org.secret)
            assert len(page["data"]["posts"]["nodes"]) == 1
    runtime, database = weakref.ref(app.state.runtime), weakref.ref(app.state.runtime.database)
    del app, manager, http, api, org
    gc.collect()
    assert runtime() is None and database() is None


async def test_a_schema_is_freed_after_executing():
    schema = _schema(GatewayExecution)
    assert (await schema.execute("{ things { id name colour } }")).errors is None
    field = weakref.ref(schema._schema.type_map["BrokenThing"].fields["name"])
    del schema
    gc.collect()
    assert field() is None
