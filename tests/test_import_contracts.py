"""The layering contracts of pyproject.toml's [tool.importlinter] (docs/architecture.md).

The project keeps each contract, and a copy of the project with one import against a contract
fails `lint-imports`, naming that contract and the import.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _contract_ids() -> list[str]:
    settings = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    return [contract["id"] for contract in settings["tool"]["importlinter"]["contracts"]]


def _lint_imports(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    """Check one contract on the project at ``root`` (its own packages, not the installed)."""
    environment = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--contract", contract],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("contract", _contract_ids())
def test_the_project_keeps_the_contract(contract: str):
    done = _lint_imports(PROJECT_ROOT, contract)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("contract", "name", "module_file", "line", "chain"),
    [
        pytest.param(
            "layers",
            "flows above tasks above schemas",
            "schemas/records.py",
            "import flows.retrain",
            "schemas.records -> flows.retrain",
            id="layers",
        ),
        pytest.param(
            "child-without-prefect",
            "the training child imports no Prefect",
            "tasks/training/child.py",
            "import prefect",
            "tasks.training.child -> prefect",
            id="child-without-prefect",
        ),
        pytest.param(
            "stages",
            "stages import only the stages before them in the pipeline",
            "tasks/training/members.py",
            "import tasks.evaluation.evaluate",
            "tasks.training.members -> tasks.evaluation.evaluate",
            id="stages",
        ),
    ],
)
def test_an_import_against_a_contract_fails(
    tmp_path: Path, contract: str, name: str, module_file: str, line: str, chain: str
):
    for package in ("flows", "tasks", "schemas"):
        shutil.copytree(
            PROJECT_ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / module_file).open("a") as module:
        module.write(f"\n{line}  # noqa\n")
    done = _lint_imports(tmp_path, contract)
    assert done.returncode != 0
    assert f"{name} BROKEN" in done.stdout, done.stdout + done.stderr
    assert chain in done.stdout, done.stdout


def test_no_benchmark_imports_test_code():
    # The tests may import the benchmarks' helpers (benchmarks/postgres.py), never the reverse:
    # a benchmark runs from a checkout without the tests' fixtures and conftest side effects.
    offending = []
    for path in sorted((PROJECT_ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offending += [
                f"{path.name}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] == "tests"
            ]
    assert not offending
