"""Hostile or mistaken run parameters: paths stay under the configured roots, numbers bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.cli.main import main
from schemas.config import ROOTS_ENV, RetrainConfig, TrainingConfig, allowed_roots


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One configured root, and the working folder inside it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv(ROOTS_ENV, str(home))
    monkeypatch.chdir(home)
    return home


@pytest.mark.parametrize("field", ["store_root", "output_dir"])
@pytest.mark.parametrize(
    "value",
    ["../../etc", "/etc", "runs/../../outside", "~/../../etc/cron.d", "/", "/tmp/elsewhere"],
)
def test_paths_outside_the_roots_are_refused(root: Path, field: str, value: str):
    with pytest.raises(ValidationError, match=f"{field}.*not (strictly inside|under)"):
        RetrainConfig(**{field: value})


def test_paths_inside_the_root_are_accepted(root: Path):
    config = RetrainConfig(store_root="data/artifacts", output_dir=str(root / "runs" / "a"))
    assert config.store_root == "data/artifacts"


def test_a_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path):
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ValidationError, match="not strictly inside"):
        RetrainConfig(output_dir="link/run")


def test_the_output_folder_is_never_a_root_or_a_store(root: Path):
    # Publishing replaces the output folder whole: "." would swap the project away.
    with pytest.raises(ValidationError, match="it is the working folder"):
        RetrainConfig(output_dir=".")
    with pytest.raises(ValidationError, match="holds store_root"):
        RetrainConfig(output_dir="runs", store_root="runs/store")


def test_nul_bytes_in_paths_are_refused(root: Path):
    with pytest.raises(ValidationError, match="NUL"):
        RetrainConfig(store_root="data\x00/x")


def test_roots_come_from_the_environment_not_the_form(root: Path, tmp_path: Path, monkeypatch):
    assert allowed_roots() == (root.resolve(),)
    monkeypatch.setenv(ROOTS_ENV, os.pathsep.join([str(root), str(tmp_path / "shared")]))
    assert RetrainConfig(store_root=str(tmp_path / "shared" / "store"))
    with pytest.raises(ValidationError, match="extra"):
        RetrainConfig.model_validate({"roots": ["/"]})


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("epochs", 10**6),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", float("inf")),
        ("learning_rate", float("nan")),
        ("seed", -1),
        ("momentum", 1.0),
    ],
)
def test_numeric_fields_are_bounded(field: str, value: float):
    with pytest.raises(ValidationError, match=field):
        TrainingConfig(**{field: value})


def test_cli_refuses_an_escaping_path_before_anything_runs(
    root: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["run", "--source", "day.csv", "--output-dir", "../../etc"]) == 1
    err = capsys.readouterr().err
    assert "output_dir" in err and "not strictly inside" in err
    assert not (root / "data").exists()
