"""Nothing a user owns is replaced: every refusal happens before any work, and leaves the
user's files byte for byte; a folder or file bikeflow made is still replaced whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.cli.main import main
from flows.predict import predict_batch
from flows.retrain import retrain
from flows.sweep import sweep
from schemas.config import ROOTS_ENV, PredictConfig, RetrainConfig, SplitConfig, TrainingConfig
from schemas.config_presets import ZOO_DEFAULTS
from schemas.errors import PathRefusedError
from schemas.flow_configs import SweepConfig
from schemas.ownership import MARKER, sidecar_path
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.storage.publish import publish_directory, publish_file


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The one configured root, which is also the working folder."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv(ROOTS_ENV, str(folder))
    monkeypatch.chdir(folder)
    return folder


def user_folder(path: Path) -> dict[str, bytes]:
    """Create a folder of the user's files (nested, binary) and return its contents."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_bytes(b"the user's notes\n")
    (path / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path, byte for byte."""
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }


def tiny(home: Path, day_csv: Path, **fields: object) -> dict[str, object]:
    """Fields of a retrain config under ``home`` that trains one short epoch."""
    return {
        "source": str(day_csv),
        "store_root": str(home / "store"),
        "output_dir": str(home / "out"),
        "registry_root": str(home / "models"),
        "split": SplitConfig(test_days=30),
        "training": TrainingConfig(epochs=1, batch_size=32, learning_rate=0.05),
        **fields,
    }


def test_an_existing_folder_bikeflow_did_not_make_is_refused_as_output_dir(home: Path):
    before = user_folder(home / "mine")
    with pytest.raises(ValidationError, match=r"refusing to replace .*mine: .*did not make it"):
        RetrainConfig(output_dir="mine")
    assert snapshot(home / "mine") == before


def test_cli_run_into_a_project_folder_is_refused_before_anything_runs(
    home: Path, day_csv: Path, capsys: pytest.CaptureFixture[str]
):
    # The first report: `bikeflow run --output-dir schemas` replaced the package.
    (home / "schemas").mkdir()
    (home / "schemas" / "config.py").write_bytes(b'"""The config model."""\n')
    before = snapshot(home / "schemas")
    code = main(["run", "--source", str(day_csv), "--epochs", "1", "--output-dir", "schemas"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"refusing to replace {home / 'schemas'}" in err and "did not make it" in err
    assert snapshot(home / "schemas") == before
    assert sorted(p.name for p in home.iterdir()) == ["schemas"]  # no store, no registry


@pytest.mark.parametrize("value", [".", "{home}", "{home}/./sub/.."])
def test_the_working_folder_is_refused(home: Path, value: str):
    before = user_folder(home / "project")
    with pytest.raises(ValidationError, match="it is the working folder"):
        RetrainConfig(output_dir=value.format(home=home))
    assert snapshot(home / "project") == before


def test_a_root_and_a_parent_of_the_working_folder_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "root"
    work = root / "team" / "project"
    before = user_folder(work)
    monkeypatch.setenv(ROOTS_ENV, str(root))
    monkeypatch.chdir(work)
    with pytest.raises(ValidationError, match="it holds the working folder"):
        RetrainConfig(output_dir="..")
    with pytest.raises(ValidationError, match=f"it is a folder listed in {ROOTS_ENV}"):
        SweepConfig(leaderboard_dir="../..")
    assert snapshot(work) == before


@pytest.mark.parametrize("other", ["store_root", "registry_root", "source"])
def test_a_parent_of_the_store_registry_or_source_is_refused(home: Path, day_csv: Path, other: str):
    # A folder of an earlier run (marker inside) into which the user then put their data:
    # replaceable by itself, but not while it holds the store, the registry or the source.
    data = home / "data"
    publish_directory(data, {"metrics.json": b"{}"}, "output_dir")
    (data / "day.csv").write_bytes(day_csv.read_bytes())
    (data / "inner").mkdir()
    before = snapshot(data)
    fields = tiny(home, data / "day.csv")
    if other != "source":
        fields[other] = str(data / "inner")
    with pytest.raises(ValidationError, match=rf"refusing to replace {data}: it holds {other}"):
        RetrainConfig(**{**fields, "output_dir": "data"})
    with pytest.raises(ValidationError, match=rf"refusing to replace {data}: it holds {other}"):
        SweepConfig(base=RetrainConfig(**fields), leaderboard_dir="data")
    assert snapshot(data) == before
    # Not there yet is no different: the store would be inside the folder to replace.
    with pytest.raises(ValidationError, match="it holds store_root"):
        RetrainConfig(output_dir="fresh", store_root="fresh/store")


def test_a_file_where_a_folder_is_expected_is_refused(home: Path):
    (home / "notes.txt").write_bytes(b"keep me")
    with pytest.raises(ValidationError, match="it is an existing file, not a folder"):
        RetrainConfig(output_dir="notes.txt")
    with pytest.raises(ValidationError, match=r"notes.txt is an existing file, not a folder"):
        RetrainConfig(output_dir="notes.txt/run")
    with pytest.raises(ValidationError, match=r"store_root: .*notes.txt is an existing file"):
        RetrainConfig(store_root="notes.txt")
    assert (home / "notes.txt").read_bytes() == b"keep me"


def test_leaderboard_outside_the_roots_or_foreign_is_refused(home: Path, tmp_path: Path):
    with pytest.raises(ValidationError, match=r"leaderboard_dir: .* not strictly inside"):
        SweepConfig(leaderboard_dir=str(tmp_path / "elsewhere"))
    before = user_folder(home / "board")
    with pytest.raises(ValidationError, match=r"leaderboard_dir: refusing .*did not make it"):
        SweepConfig(leaderboard_dir="board")
    assert snapshot(home / "board") == before


def test_cli_sweep_into_the_working_folder_is_refused(
    home: Path, day_csv: Path, capsys: pytest.CaptureFixture[str]
):
    # The second report: `bikeflow sweep --leaderboard-dir .` emptied the project.
    before = user_folder(home)
    argv = ["sweep", "--source", str(day_csv), "--architectures", "seed-mlp", "--seeds", "0"]
    assert main([*argv, "--epochs", "1", "--leaderboard-dir", "."]) == 1
    err = capsys.readouterr().err
    assert f"leaderboard_dir: refusing to replace {home}: it is the working folder" in err
    assert snapshot(home) == before


def test_prediction_output_outside_the_roots_foreign_or_a_folder_is_refused(
    home: Path, tmp_path: Path
):
    (home / "days.csv").write_bytes(b"the user's days\n")
    with pytest.raises(ValidationError, match=r"output_csv: .* not strictly inside"):
        PredictConfig(input_csv="days.csv", output_csv=str(tmp_path / "elsewhere.csv"))
    (home / "theirs.csv").write_bytes(b"a,b\n1,2\n")
    with pytest.raises(ValidationError, match=r"output_csv: refusing .*did not write it"):
        PredictConfig(input_csv="days.csv", output_csv="theirs.csv")
    with pytest.raises(ValidationError, match=r"output_csv: refusing .*did not write it"):
        PredictConfig(input_csv="days.csv", output_csv="days.csv")
    before = user_folder(home / "folder.csv")
    with pytest.raises(ValidationError, match="it is an existing folder, not a file"):
        PredictConfig(input_csv="days.csv", output_csv="folder.csv")
    assert (home / "theirs.csv").read_bytes() == b"a,b\n1,2\n"
    assert (home / "days.csv").read_bytes() == b"the user's days\n"
    assert snapshot(home / "folder.csv") == before


def test_publishing_rechecks_the_folder_right_before_the_swap(home: Path):
    # Valid when the config was made, a foreign folder appears before the run publishes.
    before = user_folder(home / "late")
    with pytest.raises(PathRefusedError, match="did not make it"):
        publish_directory(home / "late", {"a.txt": b"new"}, "output_dir")
    assert snapshot(home / "late") == before
    assert sorted(p.name for p in home.iterdir()) == ["late"]  # no staging folder left
    (home / "late.csv").write_bytes(b"theirs")
    with pytest.raises(PathRefusedError, match="did not write it"):
        publish_file(home / "late.csv", b"new", "output_csv")
    assert (home / "late.csv").read_bytes() == b"theirs"


def test_a_folder_or_file_bikeflow_made_is_replaced_whole(home: Path):
    publish_directory(home / "out", {"a.txt": b"one", "b.txt": b"two"}, "output_dir")
    assert (home / "out" / MARKER).is_file()
    RetrainConfig(output_dir="out")  # accepted: bikeflow made it
    publish_directory(home / "out", {"a.txt": b"three"}, "output_dir")
    assert snapshot(home / "out").keys() == {MARKER, "a.txt"}
    assert (home / "out" / "a.txt").read_bytes() == b"three"
    (home / "empty").mkdir()
    publish_directory(home / "empty", {"a.txt": b"x"}, "output_dir")  # nothing in it to lose

    publish_file(home / "p.csv", b"first", "output_csv")
    PredictConfig(output_csv="p.csv")
    publish_file(home / "p.csv", b"second", "output_csv")
    assert (home / "p.csv").read_bytes() == b"second"
    # Edited by the user since: theirs now.
    (home / "p.csv").write_bytes(b"second, with my notes")
    with pytest.raises(ValidationError, match="changed since bikeflow wrote it"):
        PredictConfig(output_csv="p.csv")
    assert sidecar_path(home / "p.csv").is_file()


@pytest.mark.slow
def test_a_foreign_default_output_folder_fails_the_flow_before_ingest(home: Path, day_csv: Path):
    # output_dir left at its default is not validated by pydantic: the flow's first task is.
    before = user_folder(home / "runs" / "latest")
    fields = tiny(home, day_csv)
    del fields["output_dir"]
    state = retrain(RetrainConfig(**fields), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PathRefusedError)
    assert f"output_dir: refusing to replace {home / 'runs' / 'latest'}" in str(error)
    assert snapshot(home / "runs" / "latest") == before
    assert not (home / "store").exists() and not (home / "models").exists()  # nothing ran


@pytest.mark.slow
def test_a_folder_appearing_after_validation_fails_the_sweep_before_training(
    home: Path, day_csv: Path
):
    base = RetrainConfig(**tiny(home, day_csv))
    config = SweepConfig(
        base=base, trials=({"name": "seed-mlp"},), seeds=(0,), leaderboard_dir="board"
    )
    before = user_folder(home / "board")
    state = sweep(config, return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), PathRefusedError)
    assert snapshot(home / "board") == before
    assert not (home / "store").exists()


@pytest.mark.slow
def test_reruns_into_what_bikeflow_made_still_work(home: Path, day_csv: Path):
    config = RetrainConfig(**tiny(home, day_csv))
    first = retrain(config, return_state=True)
    assert first.is_completed()
    output = home / "out"
    (output / "stale.txt").write_bytes(b"left by hand")
    inode = output.stat().st_ino
    second = retrain(config, return_state=True)
    assert second.is_completed()
    # Swapped in whole: a new folder, the marker and the run's files only.
    assert output.stat().st_ino != inode and not (output / "stale.txt").exists()
    assert (output / MARKER).is_file() and (output / "model.keras").is_file()

    later = make_day_frame(240, seed=9).iloc[200:].drop(columns=list(COUNT_COLUMNS))
    (home / "days.csv").write_bytes(to_csv_bytes(later))
    predict = PredictConfig(
        input_csv="days.csv", registry_root=config.registry_root, output_csv="pred/out.csv"
    )
    assert predict_batch(predict, return_state=True).is_completed()
    written = (home / "pred" / "out.csv").read_bytes()
    assert predict_batch(predict, return_state=True).is_completed()
    assert (home / "pred" / "out.csv").read_bytes() == written

    # The user edits the predictions: the next run refuses to replace them.
    (home / "pred" / "out.csv").write_bytes(written + b"# checked by hand\n")
    state = predict_batch(predict, return_state=True)
    assert state.is_failed()
    assert "changed since bikeflow wrote it" in str(state.result(raise_on_failure=False))
    assert (home / "pred" / "out.csv").read_bytes() == written + b"# checked by hand\n"


def test_a_sweep_never_checks_the_output_folder_it_does_not_write(home: Path, day_csv: Path):
    from flows.sweep import expand_trials
    from tasks.preflight import recheck

    # A foreign runs/latest (the default output_dir) is no reason to refuse a sweep.
    before = user_folder(home / "runs" / "latest")
    fields = tiny(home, day_csv)
    del fields["output_dir"]
    config = SweepConfig(base=RetrainConfig(**fields), seeds=(0,), leaderboard_dir="board")
    assert len(expand_trials(config)) == len(ZOO_DEFAULTS)  # every zoo model, one seed
    recheck(config)
    with pytest.raises(PathRefusedError, match="did not make it"):
        recheck(RetrainConfig(**fields))  # ... while a retrain run would replace it
    assert snapshot(home / "runs" / "latest") == before
