"""CSV import and export (issue 14, point 7): `socialgate import posts`, importPosts as a job, `socialgate export posts`."""

import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.clock import utcnow
from gateway.orgs.organizations import create_organization
from gateway.runtime import Runtime
from gateway.settings import load_settings
from gateway.storage.models import Account, Post, Target
from tests import media_samples
from tests.engine import engine_app, sandbox_account, setup_org
from tests.http_peer import Reply, scripted_server
from tests.row_counts import row_counts

runner = CliRunner()
IMPORT = """mutation($input: ImportPostsInput!) { importPosts(input: $input) {
  job { id kind status progress { done total } result error { code } events { kind payload } } userErrors { code } } }"""


def _csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _later(days: int = 1) -> str:
    return (utcnow() + timedelta(days=days)).replace(microsecond=0).isoformat()


# -- the command line ---------------------------------------------------------------------------


def _in_runtime(settings, work):
    """Run ``work(runtime)`` on a runtime of its own (the command line runs its own event loop, so these tests are sync)."""

    async def run():
        runtime = Runtime(settings)
        await runtime.start()
        try:
            return await work(runtime)
        finally:
            await runtime.stop()

    return asyncio.run(run())


@pytest.fixture
def seeded(tmp_path):
    """An organization with two sandbox accounts, in the database the command line will open."""
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/cli.db", data_dir=str(tmp_path))

    async def seed(runtime):
        async with runtime.database.write() as session:
            org = await create_organization(session, "Importers")
            for handle in ("alice", "bob"):
                session.add(Account(id=f"acct_{handle:a<24}", organization_id=org.id, provider="sandbox", external_id=handle, handle=handle))
        return org

    org = _in_runtime(settings, seed)
    return {"env": {"SOCIALGATE_DATABASE_URL": settings.database_url, "SOCIALGATE_DATA_DIR": str(tmp_path)}, "org": org.id,
            "settings": settings}


def _counts(settings) -> dict[str, int]:
    return _in_runtime(settings, row_counts)


ROWS_COLUMNS = ["text", "accounts", "publish_at", "timezone", "campaign", "sandbox.visibility"]


def _rows():
    return [
        {"text": "hello", "accounts": "sandbox:alice", "publish_at": "", "timezone": "", "campaign": "", "sandbox.visibility": "private"},
        {"text": "both", "accounts": f"sandbox:alice; {'acct_' + 'bob':a<29}", "publish_at": _later(), "timezone": "", "campaign": "",
         "sandbox.visibility": ""},
        {"text": "who?", "accounts": "sandbox:carol", "publish_at": "", "timezone": "", "campaign": "", "sandbox.visibility": ""},
        {"text": "when?", "accounts": "sandbox:bob", "publish_at": "next tuesday", "timezone": "", "campaign": "", "sandbox.visibility": ""},
        {"text": "local", "accounts": "sandbox:bob", "publish_at": "2099-01-01T09:00", "timezone": "Mars/Base", "campaign": "",
         "sandbox.visibility": ""},
        {"text": "no campaign", "accounts": "sandbox:bob", "publish_at": "", "timezone": "", "campaign": "Nope", "sandbox.visibility": ""},
        {"text": "bad setting", "accounts": "sandbox:bob", "publish_at": "", "timezone": "", "campaign": "", "sandbox.visibility": "loud"},
    ]


def test_cli_dry_run_reports_each_row_and_writes_nothing(seeded, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(_csv(_rows(), ROWS_COLUMNS))
    before = _counts(seeded["settings"])
    result = runner.invoke(app, ["import", "posts", str(path), "--org", seeded["org"], "--dry-run"], env=seeded["env"])
    assert result.exit_code == 1, result.output
    assert "7 rows: would create 2 posts" in result.stdout
    report = " ".join(result.stderr.replace("│", " ").split())
    for expected in ("4 accounts ACCOUNT_NOT_FOUND", "5 publish_at PUBLISH_AT_INVALID", "6 timezone INVALID_TIMEZONE",
                     "7 campaign CAMPAIGN_NOT_FOUND", "8 sandbox.visibility"):
        assert expected in report, report
    assert _counts(seeded["settings"]) == before


def test_cli_import_creates_schedules_and_applies_settings(seeded, tmp_path):
    path = tmp_path / "posts.csv"
    rows = _rows()[:2]
    path.write_text(_csv(rows, ROWS_COLUMNS))
    result = runner.invoke(app, ["import", "posts", str(path), "--org", seeded["org"]], env=seeded["env"])
    assert result.exit_code == 0, result.output
    assert "2 rows: created 2 posts (1 scheduled), 0 rows with errors" in result.stdout

    async def read(runtime):
        async with runtime.database.read() as session:
            posts = {p.id: p for p in (await session.execute(select(Post))).scalars()}
            targets = list((await session.execute(select(Target))).scalars())
        return posts, targets

    posts, targets = _in_runtime(seeded["settings"], read)
    by_text = {p.text: p for p in posts.values()}
    assert set(by_text) == {"hello", "both"}
    assert by_text["hello"].content["settings"] == {"acct_aliceaaaaaaaaaaaaaaaaaaa": {"visibility": "private"}}
    assert sorted((posts[t.post_id].text, t.status) for t in targets) == [("both", "scheduled"), ("both", "scheduled"), ("hello", "draft")]


def test_cli_refuses_a_file_without_its_columns(seeded, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("body,who\nhi,me\n")
    result = runner.invoke(app, ["import", "posts", str(path), "--org", seeded["org"]], env=seeded["env"])
    assert result.exit_code == 2 and "COLUMNS_MISSING" in " ".join(result.stderr.split())


def test_export_csv_round_trips_and_json_filters(seeded, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(_csv(_rows()[:2], ROWS_COLUMNS))
    assert runner.invoke(app, ["import", "posts", str(path), "--org", seeded["org"]], env=seeded["env"]).exit_code == 0
    exported = runner.invoke(app, ["export", "posts", "--org", seeded["org"], "--format", "csv"], env=seeded["env"])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert sorted((r["text"], r["status"]) for r in rows) == [("both", "scheduled"), ("hello", "draft")]
    scheduled = runner.invoke(app, ["export", "posts", "--org", seeded["org"], "--format", "json", "--status", "scheduled"], env=seeded["env"])
    data = json.loads(scheduled.stdout)
    assert [p["text"] for p in data] == ["both"] and len(data[0]["targets"]) == 2
    assert {t["status"] for t in data[0]["targets"]} == {"scheduled"}
    # The exported CSV imports again as it is.
    again = tmp_path / "again.csv"
    again.write_text(exported.stdout)
    reimported = runner.invoke(app, ["import", "posts", str(again), "--org", seeded["org"], "--dry-run"], env=seeded["env"])
    assert reimported.exit_code == 0, reimported.output
    bad = runner.invoke(app, ["export", "posts", "--org", seeded["org"], "--format", "xml"], env=seeded["env"])
    assert bad.exit_code == 2


# -- importPosts, as a job ----------------------------------------------------------------------


async def _import(api, key, text: str, dry_run=False) -> dict:
    operations = {"query": IMPORT, "variables": {"input": {"file": None, "dryRun": dry_run}}}
    response = await api.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("posts.csv", text.encode(), "text/csv")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["importPosts"]


async def test_import_posts_runs_as_a_job_with_progress_and_a_row_report(tmp_path):
    async with engine_app(tmp_path, allow_private_urls=True) as api:
        org = await setup_org(api)
        account = await sandbox_account(api, org.secret, "alice")
        with scripted_server() as server:
            server.routes["/cat.png"] = Reply(200, {"Content-Type": "image/png"}, media_samples.png())
            text = _csv(
                [{"text": "with media", "accounts": account, "media_url": server.url("/cat.png"), "publish_at": _later(2)},
                 {"text": "no such", "accounts": "acct_" + "z" * 24, "media_url": "", "publish_at": ""},
                 {"text": "gone", "accounts": account, "media_url": server.url("/missing.png"), "publish_at": ""}],
                ["text", "accounts", "media_url", "publish_at"],
            )
            dry = await _import(api, org.secret, text, dry_run=True)
            assert server.requested == []  # a dry run fetches nothing
            assert dry["job"]["result"]["created"] == 0 and dry["job"]["result"]["failedRows"] == 1
            result = await _import(api, org.secret, text)
        job = result["job"]
        assert (job["kind"], job["status"], job["progress"]) == ("posts.import", "PARTIAL", {"done": 3, "total": 3})
        assert [e["kind"] for e in job["events"]] == ["job.running", "job.progress", "job.partial"]
        assert job["result"]["created"] == 1 and job["result"]["scheduled"] == 1
        assert [(e["row"], e["column"], e["code"]) for e in job["result"]["errors"]] == [
            (3, "accounts", "ACCOUNT_NOT_FOUND"), (4, "media_url", "URL_FETCH_FAILED"),
        ]
        async with api.runtime.database.read() as session:
            post = (await session.execute(select(Post))).scalar_one()
        assert post.text == "with media" and len(post.content["media_ids"]) == 1

        broken = await _import(api, org.secret, "nothing,here\n1,2\n")
        assert broken["job"]["status"] == "FAILED" and broken["job"]["error"] == {"code": "COLUMNS_MISSING"}


async def test_import_posts_without_a_file_part_is_a_user_error(tmp_path):
    async with engine_app(tmp_path) as api:
        org = await setup_org(api)
        body = await api.graphql("""mutation { importPosts(input: {file: "", dryRun: true}) { job { id } userErrors { field code } } }""",
                                 key=org.secret)
        assert body["data"]["importPosts"] == {"job": None, "userErrors": [{"field": ["input", "file"], "code": "FILE_REQUIRED"}]}
