"""The seven platforms of wave 1 (and the sandbox) load as built-in plugins and are listed with their limits."""

import re

from typer.testing import CliRunner

from gateway.cli import app
from gateway.plugins import load_plugins

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
    result = CliRunner().invoke(app, ["providers"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│") and line.split("│")[1].strip()}
    for provider_id, text_limit in WAVE_ONE.items():
        assert provider_id in rows, result.stdout
        assert text_limit in re.sub(r"\s+", " ", rows[provider_id]), rows[provider_id]
