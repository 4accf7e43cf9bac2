from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from schema.sdl import export_sdl

COMMITTED = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_is_current():
    assert COMMITTED.read_text() == export_sdl(), "schema.graphql is stale: run `socialgate schema export --output schema.graphql`"


def test_schema_export_command(tmp_path):
    printed = CliRunner().invoke(app, ["schema", "export"])
    assert printed.exit_code == 0
    assert printed.stdout == export_sdl()
    target = tmp_path / "out.graphql"
    written = CliRunner().invoke(app, ["schema", "export", "--output", str(target)])
    assert written.exit_code == 0
    assert target.read_text() == export_sdl()
