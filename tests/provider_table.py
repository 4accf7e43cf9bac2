"""``socialgate providers`` read cell by cell, through its Markdown form.

The default rich table wraps a cell over several lines when the terminal (or the test runner's
idea of it) is narrower than the table, so a row read line by line loses the wrapped part. The
Markdown form prints each row on one line whatever the width, with the same cells.
"""

import re

from typer.testing import CliRunner

from gateway.cli import app


def providers_table(*options: str) -> dict[str, dict[str, str]]:
    """Each listed provider's id → its cells by column name (``text``, ``quotas``, …)."""
    result = CliRunner().invoke(app, ["providers", "--format", "markdown", *options])
    assert result.exit_code == 0, result.output
    header, _rule, *lines = result.stdout.splitlines()
    columns = _cells(header)
    rows = [dict(zip(columns, _cells(line), strict=True)) for line in lines]
    return {row["id"]: row for row in rows}


def _cells(line: str) -> list[str]:
    """The cells of ``| a | b \\| c |``: split on unescaped pipes, escapes undone."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
