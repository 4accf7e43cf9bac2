"""The seven platforms of wave 1 (and the sandbox) load as built-in plugins and are listed with their limits."""

from typer.testing import CliRunner

from gateway.cli import app
from gateway.plugins import load_plugins
from tests.provider_table import providers_table

# id → the main text limit and its unit, as each platform counts it
WAVE_ONE = {
    "bluesky": "300 graphemes",
    "mastodon": "500 characters",
    "x": "280 weighted characters",
    "linkedin": "3000 characters",
    "linkedin_page": "3000 characters",
    "discord": "2000 characters",
    "telegram": "4096 characters",
}


def test_every_built_in_plugin_loads_without_error():
    registry = load_plugins(None)
    assert [p.name for p in registry.plugins if p.error] == []
    assert set(WAVE_ONE) | {"sandbox"} <= set(registry.providers)


def test_socialgate_providers_lists_the_seven_platforms_with_their_limits():
    rows = providers_table()
    for provider_id, text_limit in WAVE_ONE.items():
        assert provider_id in rows, sorted(rows)
        assert text_limit in rows[provider_id]["text"].split("; "), rows[provider_id]


def test_the_default_table_lists_the_same_providers_in_its_first_column():
    """The rich table may wrap long cells at the terminal's width, never an id in the first column."""
    result = CliRunner().invoke(app, ["providers"])
    assert result.exit_code == 0, result.output
    first_cells = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(providers_table()) <= first_cells, sorted(set(providers_table()) - first_cells)
