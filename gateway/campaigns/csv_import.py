"""Posts from a CSV file (docs/import.md): each row read into a post, each problem reported by row and column.

Columns: ``text`` and ``accounts`` are required; ``publish_at``, ``timezone``, ``media_url``,
``campaign`` and ``<provider>.<setting>`` columns are optional. Rows are numbered as a
spreadsheet shows them: the header is row 1. A row that cannot be read is reported and the
others go on; reading never touches the network, so a dry run fetches no media either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.campaigns.bulk import BulkItem, ItemResult
from gateway.content import PostInput, TargetInput, register_media
from gateway.core import UserError
from gateway.engine.queue import resolve_publish_at
from gateway.outbound import UnsafeURL, validate_url
from gateway.plugins import PluginRegistry
from gateway.runtime import Runtime
from gateway.storage import Account, Campaign

REQUIRED_COLUMNS = ("text", "accounts")
KNOWN_COLUMNS = ("text", "accounts", "publish_at", "timezone", "media_url", "campaign")
# Written by ``socialgate export posts --format csv`` for people to read; an import skips them, so
# an exported file can be imported again.
EXPORT_ONLY_COLUMNS = ("id", "status", "created_at", "platform_urls")
MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
FIRST_ROW = 2  # the header is row 1
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str | None
    code: str
    message: str


@dataclass(frozen=True)
class ImportRow:
    """One data row as read: the post it makes (with media still to fetch), or why it cannot."""

    row: int
    item: BulkItem
    media_url: str | None = None
    providers: tuple[str, ...] = ()  # of the item's targets, in order: a setting's problem names its column


class Directory:
    """The organization's accounts (by id and by ``provider:handle``) and campaigns (by id and name), read once."""

    def __init__(self, accounts: Sequence[Account], campaigns: Sequence[Campaign]) -> None:
        self.accounts = {a.id: a.id for a in accounts} | {f"{a.provider}:{a.handle}".lower(): a.id for a in accounts if a.handle}
        self.providers = {a.id: a.provider for a in accounts}
        self.campaigns = {c.id: c.id for c in campaigns} | {c.name.lower(): c.id for c in campaigns}

    @classmethod
    async def load(cls, session: AsyncSession, organization_id: str) -> Directory:
        accounts = (await session.execute(select(Account).where(Account.organization_id == organization_id))).scalars()
        campaigns = (await session.execute(select(Campaign).where(Campaign.organization_id == organization_id))).scalars()
        return cls(list(accounts), list(campaigns))


def decode(raw: bytes) -> str:
    """The file's text (UTF-8, with or without a BOM, as spreadsheets save it)."""
    if len(raw) > MAX_BYTES:
        raise UserError("FILE_TOO_LARGE", f"A CSV file is at most {MAX_BYTES // (1024 * 1024)} MB.", ["file"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("FILE_NOT_UTF8", "Save the CSV file as UTF-8.", ["file"]) from None


def _setting_value(registry: PluginRegistry, provider_id: str, name: str, raw: str) -> Any:
    """A cell as the type the provider declares for that setting (text when it declares none)."""
    provider = registry.get(provider_id)
    declared = next((f for f in (provider.settings if provider else ()) if f.name == name), None)
    if declared is not None and declared.type == "boolean" and raw.lower() in TRUE + FALSE:
        return raw.lower() in TRUE
    if declared is not None and declared.type == "integer" and raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def _column_of(error: UserError, providers: Sequence[str]) -> str | None:
    """Which column a post's problem belongs to, from the input field it names."""
    field = error.field or []
    head = field[0] if field else None
    if head == "column":
        return field[1]
    if head == "targets" and len(field) > 3 and field[2] == "settings" and field[1].isdigit() and int(field[1]) < len(providers):
        return f"{providers[int(field[1])]}.{field[3]}"
    if head in ("text", "overrides", "thread"):
        return "text"
    if head == "targets":
        return "accounts"
    if head == "mediaIds":
        return "media_url"
    if head == "campaignId":
        return "campaign"
    if head == "publishAt":
        return "publish_at"
    if head == "timezone":
        return "timezone"
    return None


def errors_of(rows: Sequence[ImportRow], results: Sequence[ItemResult]) -> list[RowError]:
    """Every problem as (row, column, code, message), in row order."""
    return [
        RowError(row.row, _column_of(error, row.providers), error.code, error.message)
        for row, result in zip(rows, results, strict=True)
        for error in result.errors
    ]


def _bad(column: str, code: str, message: str) -> UserError:
    return UserError(code, message, ["column", column])


def read_rows(text: str, directory: Directory, registry: PluginRegistry, *, now: datetime | None = None) -> list[ImportRow]:
    """Every data row as an ``ImportRow``; a missing required column is an error for the whole file."""
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UserError("COLUMNS_MISSING", f"The header lacks {', '.join(missing)} (see docs/import.md).", ["file"])
    unknown = [c for c in columns if c not in KNOWN_COLUMNS + EXPORT_ONLY_COLUMNS and "." not in c]
    if unknown:
        raise UserError("COLUMNS_UNKNOWN", f"Unknown columns: {', '.join(unknown[:5])} (see docs/import.md).", ["file"])
    reader.fieldnames = columns
    rows = []
    for number, record in enumerate(reader, start=FIRST_ROW):
        if number - FIRST_ROW >= MAX_ROWS:
            raise UserError("TOO_MANY_ROWS", f"A file holds at most {MAX_ROWS} rows; split it.", ["file"])
        rows.append(_read_row(number, {k: (v or "").strip() for k, v in record.items() if k is not None}, directory, registry, now))
    return rows


def _read_row(number: int, cells: dict[str, str], directory: Directory, registry: PluginRegistry, now: datetime | None) -> ImportRow:
    errors: list[UserError] = []
    account_ids = []
    for name in cells.get("accounts", "").replace(";", " ").replace(",", " ").split():
        found = directory.accounts.get(name if name.startswith("acct_") else name.lower())
        if found is None:
            errors.append(_bad("accounts", "ACCOUNT_NOT_FOUND", f"No account {name[:60]!r}: give its id or provider:handle."))
        else:
            account_ids.append(found)
    if not cells.get("accounts"):
        errors.append(_bad("accounts", "ACCOUNTS_REQUIRED", "Name at least one account."))
    settings: dict[str, dict[str, Any]] = {}
    for column, value in cells.items():
        if "." in column and value:
            provider_id, _, setting = column.partition(".")
            settings.setdefault(provider_id, {})[setting] = value
    targets = tuple(
        TargetInput(account_id, {k: _setting_value(registry, directory.providers[account_id], k, v)
                                 for k, v in settings.get(directory.providers[account_id], {}).items()})
        for account_id in dict.fromkeys(account_ids)
    )
    campaign_id = None
    if name := cells.get("campaign"):
        campaign_id = directory.campaigns.get(name if name.startswith("camp_") else name.lower())
        if campaign_id is None:
            errors.append(_bad("campaign", "CAMPAIGN_NOT_FOUND", f"No campaign {name[:60]!r}: give its id or exact name."))
    publish_at = None
    if value := cells.get("publish_at"):
        try:
            publish_at = resolve_publish_at(datetime.fromisoformat(value), cells.get("timezone") or None, now)
        except ValueError:
            errors.append(_bad("publish_at", "PUBLISH_AT_INVALID", "publish_at is ISO 8601, e.g. 2027-05-01T09:00 or 2027-05-01T09:00+02:00."))
        except UserError as error:
            column = "timezone" if error.code == "INVALID_TIMEZONE" else "publish_at"
            errors.append(_bad(column, error.code, error.message))
    media_url = cells.get("media_url") or None
    if media_url is not None:
        try:
            validate_url(media_url, allow_private=True)  # the fetch itself applies the installation's rule
        except UnsafeURL as error:
            errors.append(_bad("media_url", error.code, error.message))
    data = PostInput(text=cells.get("text", ""), targets=targets, campaign_id=campaign_id)
    item = BulkItem(data if not errors else None, publish_at, tuple(errors))
    return ImportRow(number, item, media_url, tuple(directory.providers[t.account_id] for t in targets))


async def fetch_media(runtime: Runtime, organization_id: str, rows: Iterable[ImportRow]) -> list[ImportRow]:
    """The rows with their ``media_url`` fetched (through the SSRF guard) and attached as media."""
    fetched = []
    for row in rows:
        item = row.item
        if row.media_url is None or item.data is None:
            fetched.append(row)
            continue
        try:
            asset = await register_media(
                runtime.database, runtime.settings, organization_id, secret_key=runtime.secret_key, url=row.media_url,
            )
        except UserError as error:
            failed = BulkItem(None, item.publish_at, (_bad("media_url", error.code, error.message),))
            fetched.append(ImportRow(row.row, failed, row.media_url, row.providers))
            continue
        data = PostInput(**{**item.data.__dict__, "media_ids": (asset.id,)})
        fetched.append(ImportRow(row.row, BulkItem(data, item.publish_at), row.media_url, row.providers))
    return fetched
