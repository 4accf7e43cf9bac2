"""``socialgate export analytics``: the rollup as CSV or JSON, for spreadsheets and BI tools.

A figure no target reported is an empty CSV cell and a JSON null: never a 0 a spreadsheet would
average in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.metrics.analytics import AnalyticsFilter, export_rows, rollup


async def write_analytics(
    session: AsyncSession, organization_id: str, start: datetime, end: datetime, group_by: Sequence[str], output_format: str
) -> str:
    keys = [key.lower() for key in group_by]
    rows = export_rows(await rollup(session, organization_id, AnalyticsFilter(start, end), keys), keys)
    if output_format == "json":
        return json.dumps({"organizationId": organization_id, "from": start.isoformat(), "to": end.isoformat(), "groupBy": keys,
                           "rows": rows}, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()
