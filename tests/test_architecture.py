"""The import rules of DESIGN.md §1, checked on every module."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"gateway", "schema", "providers", "plugins"}
ALLOWED = {
    "providers": set(),
    "plugins": {"providers"},
    "gateway": {"gateway", "providers"},
    "schema": {"schema", "gateway", "providers"},
}
ROOF = {"gateway/app.py", "gateway/cli.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


MODULES = sorted(p for package in OURS for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    relative = path.relative_to(ROOT).as_posix()
    package = relative.split("/")[0]
    allowed = ALLOWED[package] | ({package} if package != "providers" else {"providers"})
    if relative in ROOF:
        allowed = allowed | {"schema"}
    assert _imports(path) <= allowed, f"{relative} imports {sorted(_imports(path) - allowed)}"
