"""The wheel alone: built, installed into a fresh venv, run from an empty folder.

What a worker image does (docs/deployments.md): no checkout, no editable install, only the
wheel and its locked dependencies. Everything read at run time (the presets) must be inside
the wheel; nothing may be read relative to the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from schemas.synthetic import write_records_csv

pytestmark = [pytest.mark.slow, pytest.mark.minutes(3)]

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
LOCKED = {
    package["name"]: package["version"]
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
}


def uv() -> str:
    """The uv of the test's venv (the dev extra brings it), else the one on PATH."""
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is missing: install the dev extra (README's set-up command)")
    return found


def call(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built the way a release is: an sdist first, then the wheel from it.

    Building from the unpacked sdist (uv build's default) leaves no stale ``build/`` folder
    of the checkout in the wheel, and checks that the sdist carries the package data too.
    """
    dist = tmp_path_factory.mktemp("dist")
    call([uv(), "build", "--quiet", "--out-dir", dist, ROOT], cwd=ROOT)
    (found,) = dist.glob("bikeflow-*.whl")
    return found


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel and its dependencies at the lock's versions."""
    root = tmp_path_factory.mktemp("installed")
    constraints = root / "constraints.txt"
    export = ["--format", "requirements-txt", "--output-file", constraints]
    call([uv(), "export", "--locked", "--no-hashes", "--no-emit-project", "--quiet", *export], ROOT)
    venv = root / "venv"
    call([uv(), "venv", "--quiet", "--python", sys.executable, venv], cwd=root)
    python = venv / "bin" / "python"
    call([uv(), "pip", "install", "--quiet", "--python", python, wheel, "-c", constraints], root)
    return venv / "bin"


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the commands run in: nothing of the checkout, only what a test writes."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def clean_env(venv_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A user's environment: no PYTHONPATH, no Prefect server (the embedded default)."""
    home = tmp_path_factory.mktemp("home")
    kept = {name: os.environ[name] for name in ("LANG", "TMPDIR") if name in os.environ}
    return {
        **kept,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "PREFECT_HOME": str(home / ".prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def test_the_wheel_carries_the_presets_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "schemas/presets/seed.yaml" in names
    assert "schemas/presets/forecaster.yaml" in names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]


def test_version_names_bikeflow_and_its_libraries(
    venv_bin: Path, empty_folder: Path, clean_env: dict[str, str]
) -> None:
    out = call(["bikeflow", "--version"], empty_folder, clean_env).splitlines()
    assert out == [
        f"bikeflow {VERSION}",
        f"prefect {LOCKED['prefect']}",
        f"keras {LOCKED['keras']}",
        f"tensorflow {LOCKED['tensorflow']}",
        "keras backend tensorflow",
    ]
    # The code that ran is the installed one, not the checkout's.
    code = "import flows, schemas, tasks; print(flows.__file__, schemas.__file__, tasks.__file__)"
    files = call([venv_bin / "python", "-c", code], empty_folder, clean_env).split()
    assert all("site-packages" in file and str(ROOT) not in file for file in files)


def test_run_then_plan_from_an_empty_folder(
    venv_bin: Path, empty_folder: Path, clean_env: dict[str, str]
) -> None:
    write_records_csv(empty_folder / "day.csv")
    flags = ["--preset", "seed", "--epochs", "1", "--source", "day.csv"]
    out = call(["bikeflow", "run", *flags], empty_folder, clean_env)
    assert "bikeflow: retraining completed" in out
    assert re.search(r"test RMSE: +[\d,]+ bikes", out)
    assert (empty_folder / "runs").is_dir()
    # The plan reads the run's cache records: digests of the installed package's own code.
    out = call(["bikeflow", "plan", *flags], empty_folder, clean_env)
    assert re.search(r"^  train_model +cached", out, re.MULTILINE), out


def test_forecaster_help(venv_bin: Path, empty_folder: Path, clean_env: dict[str, str]) -> None:
    out = call(["bikeflow", "run", "--preset", "forecaster", "--help"], empty_folder, clean_env)
    assert "--epochs" in out
