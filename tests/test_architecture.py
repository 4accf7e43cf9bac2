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


# --- The wings of gateway/ (docs/architecture.md) -------------------------------------------

GATEWAY = ROOT / "gateway"
# The roof: the wiring that composes the wings into a service, and nothing else.
ROOF_MODULES = {"__init__", "__main__", "app", "cli", "runtime", "settings", "plugins", "demo"}
WINGS = {"core", "storage", "auth", "orgs", "accounts", "content", "engine", "events", "web", "outbound"}
WINGS |= {"audit", "approvals", "calendar", "metrics", "webhooks", "campaigns", "ads"}  # wave 2
WINGS |= {"observability"}  # wave 3
# The engine's only doors: the commands the API calls, and the loop the roof starts.
ENGINE_DOORS = {"gateway.engine.queue", "gateway.engine.scheduler"}
# What each foundation wing may import of ours besides itself (everything above may use them).
FOUNDATIONS = {"core": set(), "storage": {"core"}}
# Wings behind a curated face: outside the wing, only ``gateway.<wing>`` itself is imported.
CURATED = {"core", "storage", "auth", "orgs", "accounts", "content", "events", "outbound", "web"}


def _modules_imported(path: Path) -> set[str]:
    """Every dotted module of ours that ``path`` imports, lazy imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def _wing_of(path: Path) -> str | None:
    parts = path.relative_to(GATEWAY).parts
    return parts[0] if len(parts) > 1 else None


def _wing_of_any(path: Path) -> str | None:
    """The wing of any module of ours (None outside ``gateway/``' wings)."""
    parts = path.relative_to(ROOT).parts
    return parts[1] if parts[0] == "gateway" and len(parts) > 2 else None


def _is_public_name(name: str) -> bool:
    """``gateway.events.BusEvent`` (a name taken from the face) is public; ``gateway.events.bus`` is a private module."""
    import importlib

    wing, _, rest = name.removeprefix("gateway.").partition(".")
    return rest in importlib.import_module(f"gateway.{wing}").__all__


GATEWAY_MODULES = sorted(p for p in GATEWAY.rglob("*.py") if "migrations" not in p.parts)


def test_every_gateway_module_lives_in_a_wing_or_is_the_roof():
    stray = sorted(p.stem for p in GATEWAY.glob("*.py") if p.stem not in ROOF_MODULES)
    assert stray == [], f"modules outside a wing: {stray}"
    packages = {p.name for p in GATEWAY.iterdir() if (p / "__init__.py").exists()}
    assert packages == WINGS


@pytest.mark.parametrize("wing", sorted(WINGS))
def test_each_wing_says_what_it_holds(wing):
    assert ast.get_docstring(ast.parse((GATEWAY / wing / "__init__.py").read_text())), f"gateway/{wing} has no docstring"


@pytest.mark.parametrize("path", [p for p in MODULES if "engine" not in p.relative_to(ROOT).parts[1:2]],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_engines_doors_are_used_from_outside_it(path):
    inside = {name for name in _modules_imported(path) if name.startswith("gateway.engine.")}
    behind_the_doors = {name for name in inside if not any(name == door or name.startswith(door + ".") for door in ENGINE_DOORS)}
    assert behind_the_doors == set(), f"{path.relative_to(ROOT)} reaches into the engine: {sorted(behind_the_doors)}"


@pytest.mark.parametrize("path", sorted((GATEWAY / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_never_imports_its_command_side(path):
    if path.stem in {"queue", "__init__"}:
        return
    assert not any(name.startswith("gateway.engine.queue") for name in _modules_imported(path)), path.name


@pytest.mark.parametrize("path", [p for p in GATEWAY_MODULES if _wing_of(p) in FOUNDATIONS], ids=lambda p: str(p.relative_to(ROOT)))
def test_the_foundations_import_nothing_above_them(path):
    wing = _wing_of(path)
    allowed = {"gateway", f"gateway.{wing}", *(f"gateway.{w}" for w in FOUNDATIONS[wing])}
    above = {name for name in _modules_imported(path) if name.startswith("gateway") and not any(
        name == a or name.startswith(a + ".") for a in allowed)}
    assert above == set(), f"{path.relative_to(ROOT)} imports {sorted(above)}"


@pytest.mark.parametrize("path", [p for p in GATEWAY_MODULES if _wing_of(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_wing_imports_the_roofs_composition(path):
    """Wings may use the wiring (runtime, settings, plugins) but never the app or the command line."""
    composition = {"gateway.app", "gateway.cli", "gateway.demo", "gateway.__main__"}
    assert not any(name.split(".")[:2] == c.split(".") for name in _modules_imported(path) for c in composition)


@pytest.mark.parametrize("wing", sorted(CURATED))
def test_a_curated_wing_names_its_public_surface(wing):
    """httpx-style: the package's ``__all__`` lists what it offers, and each name is there."""
    import importlib

    package = importlib.import_module(f"gateway.{wing}")
    assert package.__all__, f"gateway/{wing}/__init__.py has no __all__"
    assert [name for name in package.__all__ if not hasattr(package, name)] == []


@pytest.mark.parametrize("path", [p for p in MODULES if _wing_of_any(p) not in CURATED], ids=lambda p: str(p.relative_to(ROOT)))
def test_curated_wings_are_used_through_their_face_only(path):
    private = sorted(
        name for name in _modules_imported(path)
        if name.split(".")[:1] == ["gateway"] and name.split(".")[1:2] and name.split(".")[1] in CURATED
        and len(name.split(".")) > 2 and not _is_public_name(name)
    )
    assert private == [], f"{path.relative_to(ROOT)} reaches behind a wing's face: {private}"


def test_the_docs_stand_alone():
    """Users have the repository only: README.md and docs/ link nothing outside it."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "../shared" not in path.read_text(), f"{path.relative_to(ROOT)} links outside the repository"
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", [p for p in GATEWAY_MODULES if _wing_of(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_wings_import_their_dependencies_at_the_top(path):
    """An import inside a function hides a real dependency from the reader and from these rules.

    Only the roof's command line defers imports (so `socialgate --help` starts fast).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    nested = [
        node.lineno
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _modules_imported_by(node)
    ]
    assert nested == [], f"{path.relative_to(ROOT)} imports inside functions at lines {nested}"


def _modules_imported_by(node: ast.Import | ast.ImportFrom) -> set[str]:
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    return {name for name in names if node.__dict__.get("level", 0) == 0 and name.split(".")[0] in OURS}
