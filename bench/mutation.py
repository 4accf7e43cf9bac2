"""Mutation testing of the security-critical modules: do their tests notice a changed line?

Run from the repository root with the ``mutation`` extra installed (``pip install -e '.[mutation]'``)::

    python bench/mutation.py                 # every module below, one after another
    python bench/mutation.py scopes text     # only these
    python bench/mutation.py --list          # the modules and the tests each is judged by

Each module is mutated on its own, in a throw-away copy of the working tree, judged only by the
test files that are about it (mutmut's ``pytest_add_cli_args_test_selection``): a whole-suite
run per mutant would take hours on two cores, and a module's score should come from its own
tests. The score is killed / (killed + survived); mutants that time out count as killed (the
tests noticed), mutants no selected test reaches count as survived. Surviving mutants are
listed so they can be judged: bench/README.md records the scores and explains the equivalent
ones (a change no behaviour can see).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("gateway", "schema", "providers", "plugins")


@dataclass(frozen=True)
class Target:
    source: str
    tests: tuple[str, ...]


TARGETS = {
    "scopes": Target("gateway/auth/scopes.py", ("tests/test_scopes.py", "tests/test_keys.py")),
    "url_guard": Target("gateway/outbound/url_guard.py", ("tests/test_url_guard.py",)),
    "text": Target("providers/text.py", ("tests/test_sdk_text.py",)),
    "keys": Target("gateway/auth/keys.py", ("tests/test_keys.py", "tests/test_scopes.py", "tests/test_api_keys_api.py", "tests/test_key_recheck.py")),
    "tenancy": Target("gateway/auth/tenancy.py", ("tests/test_tenancy.py", "tests/test_isolation.py", "tests/test_tenant_tree.py")),
}
KILLED = {"killed", "timeout"}
SURVIVED = {"survived", "no tests"}


def _copy_tree(destination: Path) -> None:
    """The working tree as git sees it (tracked and new files, ignored ones left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _configure(workdir: Path, target: Target) -> None:
    """mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]: keep the project's own clean."""
    also_copy = "\n    ".join(package for package in FIRST_PARTY if package != target.source.split("/")[0])
    tests = "\n    ".join(target.tests)
    (workdir / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths =\n    {target.source.split('/')[0]}\n"
        f"only_mutate =\n    {target.source}\n"
        f"also_copy =\n    {also_copy}\n"
        f"pytest_add_cli_args_test_selection =\n    {tests}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -x\n"
    )


def _statuses(workdir: Path) -> dict[str, str]:
    """mutant name → status, from ``mutmut results --all true``."""
    output = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir, check=True, capture_output=True, text=True
    ).stdout
    statuses = {}
    for line in output.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and name:
            statuses[name] = status.strip()
    return statuses


def run(name: str, target: Target, max_children: int) -> tuple[int, int, list[str]]:
    """Mutate one module; (killed, total judged, the names of surviving mutants)."""
    with tempfile.TemporaryDirectory(prefix=f"mutation-{name}-") as scratch:
        workdir = Path(scratch)
        _copy_tree(workdir)
        _configure(workdir, target)
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)],
            cwd=workdir, check=True, stdout=subprocess.DEVNULL,
        )
        statuses = _statuses(workdir)
        judged = {mutant: status for mutant, status in statuses.items() if status in KILLED | SURVIVED}
        survivors = [f"{mutant}\n{_diff(workdir, mutant)}" for mutant, status in sorted(judged.items()) if status in SURVIVED]
    return len(judged) - len(survivors), len(judged), survivors


def _diff(workdir: Path, mutant: str) -> str:
    """The mutant's change, as ``mutmut show`` prints it, indented under its name."""
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=workdir, capture_output=True, text=True).stdout
    changed = [line for line in shown.splitlines() if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))]
    return "\n".join(f"        {line}" for line in changed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", choices=[[], *TARGETS], help="modules to mutate (default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, then stop")
    arguments = parser.parse_args()
    if arguments.list:
        for name, target in TARGETS.items():
            print(f"{name:10} {target.source}  ← {' '.join(target.tests)}")
        return
    for name in arguments.modules or list(TARGETS):
        killed, total, survivors = run(name, TARGETS[name], arguments.max_children)
        score = 100 * killed / total if total else 0.0
        print(f"{name:10} {killed}/{total} killed  {score:.1f}%", flush=True)
        for mutant in survivors:
            print(f"    survived: {mutant}", flush=True)


if __name__ == "__main__":
    main()
