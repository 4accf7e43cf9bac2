"""Installing plugin distributions for tests: fake ones written on the spot, and the example package."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = ROOT / "examples" / "provider-plugin"


def write_distribution(site: Path, name: str, version: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A minimal installed distribution in ``site``: modules plus a dist-info with entry points.

    importlib.metadata finds it as soon as ``site`` is on sys.path, exactly as it finds a
    pip-installed package.
    """
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[socialgate.providers]\n{lines}")
    importlib.invalidate_caches()


def pip_install_example(target: Path) -> None:
    """``pip install --no-deps --target`` the example plugin; a fresh venv's pip can build it.

    Without build isolation first (no network needed when setuptools and wheel are present),
    then with it (pip fetches the build backend, as on a fresh CI machine).
    """
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds.
    source = target.parent / f"{target.name}-source"
    shutil.copytree(EXAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)]
    offline = subprocess.run([*base, "--no-build-isolation"], capture_output=True, text=True)
    if offline.returncode != 0:
        subprocess.run(base, check=True, capture_output=True, text=True)
    importlib.invalidate_caches()
