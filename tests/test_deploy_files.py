"""deploy/: Docker cannot run here, so the files are checked for what would break them: compose.yaml's
services and their order, commands that exist with the options given, settings that exist and
accept the values given, the balancer in front of the API processes, and systemd units that run
real commands. docs/deploy.md names only real commands and settings."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

from gateway.cli import app
from gateway.settings import ENV_PREFIX, OAUTH_VARIABLE, SUPPORTED_EVENT_SCHEMES, Settings, load_settings
from gateway.web import multipart_limit
from tests.test_operator_mistakes import new_secret_key

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CLI = typer.main.get_command(app)
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
# Variables of other software the files may set.
OTHERS = {"PROMETHEUS_MULTIPROC_DIR", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _command(words: list[str]) -> Any:
    """The click command ``words`` name (after the program), with every option checked to exist."""
    command = CLI
    rest = list(words)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"`socialgate {' '.join(words)}`: no command {name!r}"
        command = command.commands[name]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"`socialgate {' '.join(words)}`: no option {word}"
    return command


def _interpolated(value: str) -> str:
    """compose's ${VAR:?message} and ${VAR:-default} with what an operator fills in."""
    filled = {"POSTGRES_PASSWORD": "pw", "SOCIALGATE_SECRET_KEY": new_secret_key()}

    def one(match: re.Match[str]) -> str:
        name, operator, default = match[1], match[2], match[3]
        return filled.get(name) or (default if operator == ":-" else "x")

    return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", one, value)


def _socialgate_services(compose: dict) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if spec.get("image", "").startswith("socialgate")}


def test_compose_has_every_part(compose):
    services = compose["services"]
    ours = _socialgate_services(compose)
    commands = {name: spec["command"][0] for name, spec in ours.items()}
    assert sorted(n for n, c in commands.items() if c == "serve") == ["api-1", "api-2"]
    assert sorted(n for n, c in commands.items() if c == "worker") == ["worker-1", "worker-2"]
    assert [n for n, c in commands.items() if c == "migrate"] == ["migrate"]
    assert services["postgres"]["image"].startswith("postgres:") and services["redis"]["image"].startswith("redis:")
    assert services["lb"]["image"].startswith("nginx:")
    build = services["migrate"]["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT and (ROOT / build["dockerfile"]).exists()


def test_compose_commands_are_real(compose):
    for name, spec in _socialgate_services(compose).items():
        _command(spec["command"])
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["socialgate"]' in dockerfile
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        if copied != "pyproject.toml":
            assert (ROOT / copied).exists(), copied


def test_the_migration_runs_before_any_process_that_needs_it(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name, spec in _socialgate_services(compose).items():
        if name != "migrate":
            assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
            assert spec["depends_on"]["redis"]["condition"] == "service_healthy", name
    for dependency in services["lb"]["depends_on"]:
        assert dependency in services


def test_compose_settings_exist_and_are_accepted(compose):
    for name, spec in _socialgate_services(compose).items():
        environment = {key: _interpolated(str(value)) for key, value in spec["environment"].items()}
        unknown = {key for key in environment if key not in SETTINGS | OTHERS and not OAUTH_VARIABLE.fullmatch(key)}
        assert unknown == set(), f"{name}: {unknown}"
        values = {key.removeprefix(ENV_PREFIX).lower(): value for key, value in environment.items() if key in SETTINGS}
        if urlsplit(values.get("events_url", "")).scheme not in SUPPORTED_EVENT_SCHEMES:
            # The Redis bus's scheme is accepted by the settings of a socialgate that has that bus.
            values.pop("events_url")
        load_settings(**values)
    api = compose["services"]["api-1"]
    assert api["environment"]["SOCIALGATE_RUN_SCHEDULER"] == "false"  # publishing is the workers' job
    assert "SOCIALGATE_RUN_SCHEDULER" not in compose["services"]["worker-1"]["environment"]


def test_every_process_shares_the_media_volume(compose):
    for name, spec in _socialgate_services(compose).items():
        assert "media:/var/lib/socialgate" in spec["volumes"], name
        assert spec["environment"]["SOCIALGATE_DATA_DIR"] == "/var/lib/socialgate"
    assert "media" in compose["volumes"]


def test_the_balancer_fronts_every_api_process(compose):
    conf = (DEPLOY / "nginx.conf").read_text()
    mount = compose["services"]["lb"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mount).resolve() == (DEPLOY / "nginx.conf").resolve()
    upstream = re.search(r"upstream socialgate_api \{(.*?)\}", conf, re.S).group(1)
    servers = sorted(re.findall(r"server (\S+);", upstream))
    ports = {name: spec["command"][spec["command"].index("--port") + 1]
             for name, spec in _socialgate_services(compose).items() if spec["command"][0] == "serve"}
    assert servers == sorted(f"{name}:{port}" for name, port in ports.items())
    assert "proxy_set_header Upgrade $http_upgrade;" in conf  # WebSocket subscriptions
    assert "proxy_buffering off;" in conf  # SSE subscriptions
    size = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert size * 1024 * 1024 >= multipart_limit()


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("path", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_systemd_units_run_real_commands(path):
    unit = _unit(path)
    words = shlex.split(unit["Service"]["ExecStart"].replace("%i", "8001"))
    assert words[0] == "/opt/socialgate/bin/socialgate"
    _command(words[1:])
    environment = [line.split("=", 1)[0] for line in re.findall(r"^Environment=(\S+)", path.read_text(), re.M)]
    assert set(environment) <= SETTINGS | OTHERS
    if words[1] != "migrate":
        assert unit["Unit"]["Requires"] == "socialgate-migrate.service" and unit["Unit"]["After"] == "socialgate-migrate.service"


def test_env_example_names_only_real_settings():
    names = re.findall(r"^#?\s*([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M)
    assert names and set(names) <= SETTINGS | OTHERS | {n for n in names if OAUTH_VARIABLE.fullmatch(n)}


def test_the_deploy_guide_names_real_commands_and_settings():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", guide, re.S):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("socialgate "):
                _command(shlex.split(line.split(" #")[0])[1:])
    variables = set(re.findall(r"\bSOCIALGATE_[A-Z_]+[A-Z]\b", guide))
    unknown = {v for v in variables if v not in SETTINGS and not OAUTH_VARIABLE.fullmatch(v) and not v.startswith("SOCIALGATE_OAUTH_")}
    assert unknown == set()
    for path in re.findall(r"\]\((\.\./deploy/[^)]+)\)", guide):
        assert (ROOT / "docs" / path).resolve().exists(), path
