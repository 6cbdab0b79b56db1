"""``bikeflow gc`` after real runs (synthetic data): a dry run changes nothing; --apply frees
space while the last config stays all cached and the champion still predicts; gc beside a
running training leaves it whole. And retention: a forecaster run leaves at most 16 models."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.cli.main import main
from flows.retrain import retrain
from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.gc_pass import GcConfig, gc_pass
from tasks.plan.engine import plan_retrain
from tasks.storage.gc import referenced_paths
from tasks.storage.store import ArtifactStore

pytestmark = [pytest.mark.slow, pytest.mark.minutes(6)]
ROOT = Path(__file__).resolve().parents[2]
CACHEABLE = (
    "ingest_source",
    "validate_records",
    "split_by_date",
    "normalise_features",
    "train_model",
    "select_best_epoch",
    "assemble_forecaster",
    "evaluate_model",
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): hashlib.sha256(p.read_bytes()).digest() for p in root.rglob("*") if p.is_file()}


def _keras_files(*roots: Path) -> list[Path]:
    return [path for root in roots for path in root.rglob("*.keras")]


def _config(tmp_path: Path, source: Path, **training: object) -> RetrainConfig:
    return RetrainConfig(
        source=str(source),
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=30),
        training=TrainingConfig(batch_size=16, learning_rate=0.05, **training),
    )


def test_gc_frees_space_and_keeps_the_last_config_cached_and_the_champion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    records = tmp_path / "records"
    # The forecaster's shape (3 members, refit), a few epochs.
    forecaster = _config(tmp_path, source, epochs=3, ensemble_size=3, refit=True)
    every = _config(tmp_path, source, epochs=3, seed=7, keep_checkpoints="all")
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: records}):
        assert retrain(forecaster, return_state=True).is_completed()
        roots = (tmp_path / "store", tmp_path / "models", tmp_path / "out")
        # Retention: 6 trainings of 3 epochs kept at most 2 checkpoints each, and the run's
        # own models (the averaged ones, the registry's, the output folder's) are few.
        models = _keras_files(*roots)
        print(f"{len(models)} .keras files after a forecaster-shaped run")
        assert len(models) <= 16
        assert retrain(every, return_state=True).is_completed()  # the last config
        capsys.readouterr()

        flags = ["--store-root", every.store_root, "--registry-root", every.registry_root]
        aggressive = [*flags, "--keep-runs", "1", "--keep-versions", "0", "--grace-hours", "0"]
        before = _files(tmp_path)
        assert main(["gc", *aggressive]) == 0
        listed = capsys.readouterr().out
        assert _files(tmp_path) == before  # a dry run deletes nothing
        assert "checkpoints" in listed and "cache records" in listed and "would free" in listed

        store_bytes = sum(p.stat().st_size for p in (tmp_path / "store").rglob("*") if p.is_file())
        assert main(["gc", *aggressive, "--apply"]) == 0
        assert "freed" in capsys.readouterr().out
        after = sum(p.stat().st_size for p in (tmp_path / "store").rglob("*") if p.is_file())
        assert after < store_bytes
        assert main(["gc", *aggressive]) == 0  # nothing left to free
        assert "would free 0 B" in capsys.readouterr().out

        # The last config is still all cached (the first one's records and files are gone).
        plans = {plan.step: plan.status for plan in plan_retrain(every, None)}
        assert {step: plans[step] for step in CACHEABLE} == dict.fromkeys(CACHEABLE, "cached")
        first = {plan.step: plan.status for plan in plan_retrain(forecaster, None)}
        # The older run's training was collected (on JAX its members are one group step).
        trained = "train_member_group" if forecaster.training.backend == "jax" else "train_model"
        assert first[trained] == "will run"
        ran = retrain(every, return_state=True)
        assert ran.is_completed()

        # The champion still predicts.
        days = make_day_frame(200, seed=1).tail(5).drop(columns=[*COUNT_COLUMNS, "instant"])
        wanted = tmp_path / "wanted.csv"
        wanted.write_bytes(to_csv_bytes(days))
        output = tmp_path / "predicted.csv"
        predict = ["--registry-root", every.registry_root, "--output-csv", str(output)]
        assert main(["predict", "--input-csv", str(wanted), *predict]) == 0
        assert len(output.read_text().splitlines()) == 6


def _launch_run(tmp_path: Path, source: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "records"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            "BIKEFLOW_ROOTS": str(tmp_path),
        }
    )
    command = [
        *(sys.executable, "-m", "flows.cli", "run", "--source", str(source)),
        *("--store-root", str(tmp_path / "store"), "--output-dir", str(tmp_path / "out")),
        *("--registry-root", str(tmp_path / "models"), "--test-days", "30"),
        *("--batch-size", "4", "--epochs", "3", "--ensemble-size", "2", "--refit", "true"),
    ]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_gc_beside_a_running_training_leaves_both_whole(tmp_path: Path):
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(200, seed=3)))
    # Something for gc to collect: a checkpoint an older run left, unreferenced, two days old.
    left = ArtifactStore(tmp_path / "store").put_bytes(b"an older run's checkpoint", ".keras")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(left.path, (two_days_ago, two_days_ago))
    run = _launch_run(tmp_path, source)
    config = GcConfig(
        store_root=str(tmp_path / "store"),
        registry_root=str(tmp_path / "models"),
        keep_runs=1,
        keep_versions=0,
        grace_hours=0,
    )
    passes = held = freed = 0
    while run.poll() is None:
        report = gc_pass(config, tmp_path / "records", apply=True)
        passes += 1
        held += report.plan.held_locks > 0
        freed += report.freed
        time.sleep(0.2)
    _out, err = run.communicate()
    assert run.returncode == 0, err[-3000:]
    assert passes > 3 and held > 0  # gc ran while the training held its cache lock
    assert freed >= left.size and not Path(left.path).exists()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["test_rmse"] > 0
    # Every record's artifacts are intact, and every stored object is whole.
    for record in (tmp_path / "records").iterdir():
        if record.is_file() and len(record.name) == 64:
            result = json.loads(json.loads(record.read_bytes())["result"])
            for path in referenced_paths(result):
                assert Path(path).is_file(), (record.name, path)
    for path in (tmp_path / "store" / "objects").rglob("*.*"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split(".")[0]
    # And gc after it finished deletes nothing the finished run needs: a rerun is all cached.
    gc_pass(config, tmp_path / "records", apply=True)
    again = _launch_run(tmp_path, source)
    _out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    rerun = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert rerun["test_rmse"] == metrics["test_rmse"]
