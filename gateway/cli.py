"""The `socialgate` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from gateway.core import ServiceError
from gateway.settings import Settings, StartupError, load_settings

if TYPE_CHECKING:
    pass

T = TypeVar("T")

app = typer.Typer(
    help="socialgate: one GraphQL API for every social platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
orgs_app = typer.Typer(help="Manage organizations.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
schema_app = typer.Typer(help="The GraphQL schema.", no_args_is_help=True)
plugins_app = typer.Typer(help="Installed plugins.", no_args_is_help=True)
export_app = typer.Typer(help="Export data.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(plugins_app, name="plugins")
app.add_typer(keys_app, name="keys")
app.add_typer(schema_app, name="schema")
import_app = typer.Typer(help="Import posts from a file.", no_args_is_help=True)
export_app = typer.Typer(help="Export posts to a file.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

FIRST_QUERY = "{ viewer { organization { id name } scopes apiKeyId } }"


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _with_runtime(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the runtime (migrating SQLite), run one piece of work, close it."""
    from gateway.runtime import Runtime

    async def run() -> T:
        runtime = Runtime(settings)
        try:
            await runtime.start()
            return await work(runtime)
        finally:
            await runtime.stop()

    return asyncio.run(run())


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed a demo organization, key and sandbox account.")] = False,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default SOCIALGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default SOCIALGATE_PORT).")] = None,
) -> None:
    """Run the API (and, on the embedded default, everything else) in this process."""
    import uvicorn

    from gateway.app import create_app
    from gateway.core import configure_logging
    from gateway.outbound import settle_after_startup
    from gateway.web import FrameWritingProtocol

    settings = _settings(host=host, port=port)
    configure_logging(settings.log_level)
    if demo:
        from gateway.demo import seed_demo

        _print_demo(settings, _with_runtime(settings, seed_demo))
    else:
        from gateway.runtime import check_startup

        # Checked here, not only in the app's lifespan: uvicorn would bury the message in a traceback.
        asyncio.run(check_startup(settings))
    application = create_app(settings)
    settle_after_startup()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        # GraphQL event frames are small JSON: compressing each costs more CPU per subscriber
        # than it saves on the wire.
        ws_per_message_deflate=False,
        # A WebSocket frame carries what a JSON body would: the same limit (gateway.web.body_limit).
        ws_max_size=settings.max_request_bytes,
        # uvicorn's sans-I/O websockets protocol, letting a subscription fan-out write each event's
        # frame, built once, straight to every subscriber's socket (gateway.web.websocket_frames).
        ws=FrameWritingProtocol,
    )


def _print_demo(settings: Settings, seed: Any) -> None:
    graphql_url = f"{settings.base_url}/graphql"
    out.print(f"[bold]socialgate demo[/bold] — organization {seed.organization_name} ({seed.organization_id})")
    out.print(f"GraphiQL: {graphql_url}")
    if seed.secret:
        out.print(f"API key (shown once, keep it): [bold]{seed.secret}[/bold]")
        out.print("First query — paste into GraphiQL with the header "
                  f'{{"Authorization": "Bearer {seed.secret}"}}, or run:')
        body = json.dumps({"query": FIRST_QUERY})
        out.print(
            f"  curl -s {graphql_url} -H 'Authorization: Bearer {seed.secret}' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )
    else:
        out.print("The demo already exists; its key was shown when it was created and is not stored.")
        out.print(f"Mint a new one with: socialgate keys create --org {seed.organization_id} --scope '*'")
        out.print(f"First query: {FIRST_QUERY}")


@app.command()
def worker() -> None:
    """Run only the publishing engine and what runs beside it (metrics reads, webhook deliveries, the ads sync; no API): as many as you like, against one database."""
    import signal

    from gateway.app import add_wing_chores, start_beside_scheduler, start_metrics_server, stop_all
    from gateway.core import configure_logging
    from gateway.engine.scheduler import Scheduler
    from gateway.outbound import settle_after_startup
    from gateway.runtime import Runtime

    settings = _settings()
    configure_logging(settings.log_level)

    async def run() -> None:
        runtime = Runtime(settings)
        add_wing_chores(runtime)
        await runtime.start()
        runtime.scheduler = Scheduler(runtime)
        runtime.scheduler.start()
        loops = start_beside_scheduler(runtime)
        metrics_server = await start_metrics_server(runtime)
        settle_after_startup()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        err.print(f"worker {runtime.scheduler.worker_id} running; SIGTERM stops it after calls in flight")
        try:
            await stopping.wait()
        finally:
            await stop_all(loops)
            if metrics_server is not None:
                await metrics_server.stop()
            await runtime.scheduler.stop()
            await runtime.stop()

    asyncio.run(run())


@app.command()
def doctor() -> None:
    """Check this deployment's configuration (database, migrations, secret key, event bus, public URL,
    OAuth clients) with this process's environment; exit 1 when anything is wrong."""
    from gateway.observability import diagnose
    from gateway.plugins import load_plugins
    from gateway.settings import SettingsError

    try:
        settings = _settings()
    except SettingsError as refused:
        for problem in refused.problems:
            out.print(f"[red]FAIL[/red] settings: {escape(problem)}")
        err.print("Fix the settings first: the other checks need them.")
        raise typer.Exit(1) from None
    findings = asyncio.run(diagnose(settings, load_plugins(settings.plugins)))
    for finding in findings:
        mark = "[green]ok[/green]  " if finding.ok else "[red]FAIL[/red]"
        out.print(f"{mark} {finding.check}: {escape(finding.message)}")
    problems = sum(not finding.ok for finding in findings)
    if problems:
        err.print(f"[red]{problems} problem{'s' if problems > 1 else ''}[/red]: fix them and run `socialgate doctor` again.")
        raise typer.Exit(1)
    out.print("Everything socialgate can check from here is in order.")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    from gateway.runtime import prepare_database
    from gateway.settings import resolve_secret_key
    from gateway.storage import Database, current_revision

    settings = _settings()

    async def run() -> str | None:
        database = Database(settings.database_url)
        try:
            await prepare_database(settings, database, resolve_secret_key(settings), migrate=True)
            return await current_revision(database)
        finally:
            await database.dispose()

    out.print(f"database at revision {asyncio.run(run())}")


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="The organization's name.")],
    parent: Annotated[str | None, typer.Option(help="Parent organization id (one level deep).")] = None,
) -> None:
    """Create an organization and print its id."""
    from gateway.orgs import create_organization

    async def work(runtime: Any) -> Any:
        async with runtime.database.write() as session:
            return await create_organization(session, name, parent_id=parent)

    organization = _with_runtime(_settings(), work)
    out.print(organization.id)


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="The organization the key acts in.")],
    scope: Annotated[list[str], typer.Option(help="A scope such as posts:* (repeat for more).")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Mint an API key and print its secret — the only time it is shown."""
    from gateway.auth import mint_key
    from gateway.orgs import get_organization

    async def work(runtime: Any) -> Any:
        async with runtime.database.write() as session:
            await get_organization(session, org)
            return await mint_key(session, org, scope, name=name)

    minted = _with_runtime(_settings(), work)
    err.print(f"key {minted.key.id} with scopes {', '.join(minted.key.scopes)}; the secret is shown once:")
    out.print(minted.secret)


@keys_app.command("kill-switch")
def keys_kill_switch(
    key_id: Annotated[str, typer.Argument(help="The key to switch.")],
    on: Annotated[bool, typer.Option("--on/--off", help="--on refuses the key at once; --off lets it work again.")],
) -> None:
    """The per-key kill switch (the global one is SOCIALGATE_KILL_SWITCH)."""
    from gateway.auth import set_key_disabled

    async def work(runtime: Any) -> Any:
        async with runtime.database.write() as session:
            return await set_key_disabled(session, key_id, on)

    key = _with_runtime(_settings(), work)
    out.print(f"key {key.id} {'disabled' if key.disabled else 'enabled'}")


@orgs_app.command("kill-switch")
def orgs_kill_switch(
    org_id: Annotated[str, typer.Argument(help="The organization to switch.")],
    on: Annotated[bool, typer.Option("--on/--off", help="--on refuses every key of the organization and of its children; --off restores them.")],
) -> None:
    """The per-organization kill switch; it refuses the keys of the organization's children too."""
    from gateway.orgs import set_kill_switch

    async def work(runtime: Any) -> Any:
        async with runtime.database.write() as session:
            return await set_kill_switch(session, org_id, on)

    organization = _with_runtime(_settings(), work)
    out.print(f"organization {organization.id} {'disabled' if organization.kill_switch else 'enabled'}")


@import_app.command("posts")
def import_posts(
    file: Annotated[Path, typer.Argument(help="The CSV file (columns: docs/import.md).", exists=True, dir_okay=False)],
    org: Annotated[str, typer.Option(help="The organization the posts belong to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and write nothing.")] = False,
) -> None:
    """Create (and schedule) a post per CSV row, with a progress bar and a report of every row's problems."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gateway.campaigns.imports import import_posts as run_import
    from gateway.orgs import get_organization

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("checking" if dry_run else "importing", total=None)

        async def on_rows(total: int) -> None:
            progress.update(task, total=total)

        async def on_progress(done: int) -> None:
            progress.update(task, completed=done)

        async def work(runtime: Any) -> Any:
            async with runtime.database.read() as session:
                await get_organization(session, org)
            return await run_import(runtime, org, None, file.read_bytes(), dry_run=dry_run, on_rows=on_rows, on_progress=on_progress)

        try:
            report = _with_runtime(_settings(), work)
        except ServiceError as error:
            progress.stop()
            err.print(f"[red]{escape(getattr(error, 'code', 'ERROR'))}[/red] {escape(error.message)}")
            raise typer.Exit(2) from None
    if report.errors:
        table = Table("row", "column", "code", "message", title="rows not imported")
        for problem in report.errors:
            table.add_row(str(problem.row), problem.column or "-", problem.code, escape(problem.message))
        err.print(table)
    verb = "would create" if dry_run else "created"
    created = report.rows - report.failed_rows if dry_run else report.created
    out.print(f"{report.rows} rows: {verb} {created} posts ({report.scheduled} scheduled), {report.failed_rows} rows with errors")
    if report.errors:
        raise typer.Exit(1)


@export_app.command("posts")
def export_posts(
    org: Annotated[str, typer.Option(help="The organization whose posts to export.")],
    format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    status: Annotated[str | None, typer.Option(help="Only posts in this status (draft, scheduled, published…).")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's posts.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only posts with a target on this provider.")] = None,
    account: Annotated[str | None, typer.Option(help="Only posts with a target on this account.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="Scheduled (or created) at or after, ISO 8601 with offset.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Scheduled (or created) before, ISO 8601 with offset.")] = None,
) -> None:
    """Write the organization's posts, newest first, as CSV (re-importable) or JSON (every target)."""
    from datetime import datetime

    from gateway.campaigns.export import FORMATS
    from gateway.campaigns.export import export_posts as run_export
    from gateway.content import PostFilter
    from gateway.orgs import get_organization

    if format not in FORMATS:
        err.print(f"[red]--format is one of {', '.join(FORMATS)}[/red]")
        raise typer.Exit(2)
    try:
        bounds = [datetime.fromisoformat(v) if v else None for v in (since, until)]
    except ValueError:
        err.print("[red]--from and --to are ISO 8601 times, e.g. 2027-05-01T00:00:00+00:00[/red]")
        raise typer.Exit(2) from None
    if any(b is not None and b.tzinfo is None for b in bounds):
        err.print("[red]--from and --to need a UTC offset[/red]")
        raise typer.Exit(2)
    filters = PostFilter(status=status, provider=provider, account_id=account, campaign_id=campaign, starts=bounds[0], ends=bounds[1])

    async def work(runtime: Any) -> int:
        async with runtime.database.read() as session:
            await get_organization(session, org)
        if output is None:
            return await run_export(runtime, org, filters, sys.stdout, format)
        with output.open("w", newline="", encoding="utf-8") as handle:
            return await run_export(runtime, org, filters, handle, format)

    try:
        count = _with_runtime(_settings(), work)
    except ServiceError as error:
        err.print(f"[red]{escape(getattr(error, 'code', 'ERROR'))}[/red] {escape(error.message)}")
        raise typer.Exit(2) from None
    err.print(f"exported {count} posts")


@schema_app.command("export")
def schema_export(
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the schema in SDL: the file committed as schema.graphql."""
    from schema.sdl import export_sdl

    sdl = export_sdl()
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)
        err.print(f"wrote {output}")


@export_app.command("analytics")
def export_analytics(
    org: Annotated[str, typer.Option(help="The organization whose posts are added up.")],
    from_: Annotated[datetime, typer.Option("--from", help="Posts published from this UTC date or date-time (2026-01-01 or 2026-01-01T09:00:00).")],
    to: Annotated[datetime, typer.Option(help="…up to, not including (at most 366 days later).")],
    group_by: Annotated[list[str], typer.Option(help="provider, account, campaign, day or week (repeat for more).")] = [],  # noqa: B006
    output_format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """The analytics rollup as CSV or JSON: one row per group, null figures left empty (CSV) or null (JSON)."""
    from gateway.metrics.export import write_analytics
    from gateway.orgs import get_organization

    if output_format not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")

    async def work(runtime: Any) -> str:
        async with runtime.database.read() as session:
            await get_organization(session, org)
            return await write_analytics(session, org, _utc(from_), _utc(to), group_by, output_format)

    text = _with_runtime(_settings(), work)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@plugins_app.command("list")
def plugins_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every plugin found (name, version, hooks, providers) and why any failed to load."""
    from rich.table import Table

    from gateway.plugins import load_plugins

    registry = load_plugins(_settings().plugins)
    if as_json:
        sys.stdout.write(json.dumps([info.as_dict() for info in registry.plugins], indent=2) + "\n")
        return
    table = Table("name", "version", "hooks", "providers", "status")
    for info in registry.plugins:
        status = "[green]loaded[/green]" if info.loaded else f"[red]failed[/red]: {info.error}"
        table.add_row(info.name, info.version or "-", ", ".join(info.hooks), ", ".join(info.providers), status)
    out.print(table)


@app.command()
def providers(
    output_format: Annotated[str, typer.Option("--format", help="table (default) or markdown (the table in docs/providers.md).")] = "table",
    builtin: Annotated[bool, typer.Option("--builtin", help="Only the platforms shipped with socialgate, not installed plugins'.")] = False,
) -> None:
    """The loaded providers with their capabilities, limits, quotas, metrics and what needs the platform's approval."""
    from rich.table import Column, Table

    from gateway.plugins import PROVIDER_COLUMNS, builtin_provider_ids, load_plugins, provider_row, providers_markdown

    if output_format not in ("table", "markdown"):
        err.print(f"[red]FORMAT_INVALID[/red]: --format is table or markdown, not {escape(output_format)}")
        raise typer.Exit(2)
    registry = load_plugins(_settings().plugins)
    shown = builtin_provider_ids(registry) if builtin else set(registry.providers)
    chosen = [provider for provider_id, provider in registry.providers.items() if provider_id in shown]
    if output_format == "markdown":
        sys.stdout.write(providers_markdown(chosen))
        return
    # The id is what a user types next (connect, settings): never cut, however narrow the terminal.
    table = Table(Column(PROVIDER_COLUMNS[0], no_wrap=True), *PROVIDER_COLUMNS[1:])
    for provider in sorted(chosen, key=lambda p: p.id):
        row = provider_row(provider)
        table.add_row(*(escape(row[column]) for column in PROVIDER_COLUMNS))
    out.print(table)


def main() -> None:
    try:
        app()
    except StartupError as exc:
        err.print(f"[red]socialgate cannot start.[/red] {escape(str(exc))}")
        raise SystemExit(2) from None
    except ServiceError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise SystemExit(1) from None
