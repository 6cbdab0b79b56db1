"""The JAX trainer's scenarios, run in a fresh interpreter with ``KERAS_BACKEND=jax``.

``PYTHONPATH=. python tests/tasks/training/jax_scenarios.py OUT_DIR`` trains each scenario
once and writes ``OUT_DIR/results.json`` (histories, predictions, file paths) for
test_jax_fit.py to check: a pytest process has Keras on TensorFlow already, and one
interpreter for all scenarios pays the JAX and Keras imports once.

``... jax_scenarios.py OUT_DIR kill`` starts the journaled trainings of the resume scenarios
and kills its own process with SIGKILL after an epoch; ``... OUT_DIR resume`` resumes them,
trains the same uninterrupted, and writes ``OUT_DIR/resume.json``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

if os.environ.get("KERAS_BACKEND") != "jax":
    raise SystemExit("run with KERAS_BACKEND=jax")

import numpy as np

from schemas.config import ModelConfig, TrainingConfig
from tasks.storage.descriptors import TrainingRun
from tasks.storage.store import ArtifactStore
from tasks.training import jax_feed
from tasks.training.jax_fit import fit_members, fit_model_jax
from tasks.training.job import EpochJournal, FitJob, StationInputs
from tasks.training.retention import retain_checkpoints

ROWS = 150


def arrays(rows: int = ROWS, columns: int = 11, seed: int = 0) -> list[np.ndarray]:
    """Training and validation features and targets with a learnable signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, columns)).astype(np.float32)
    y = (x[:, :1] * 0.8 - x[:, 7:8] * 0.5 + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    cut = rows * 5 // 6
    return [x[:cut], y[:cut], x[cut:], y[cut:]]


def job(
    root: Path,
    seed: int,
    epochs: int = 3,
    model: ModelConfig | None = None,
    data: list[np.ndarray] | None = None,
    stations: StationInputs | None = None,
    decay_rate: float = 0.5,
    keep_checkpoints: str = "all",
) -> FitJob:
    """A job on the shared arrays (batch 8: the last batch of 125 rows is partial).

    Every epoch's checkpoint is kept unless ``keep_checkpoints`` says otherwise (the
    default config's ``chosen`` has scenarios of its own below).
    """
    training = TrainingConfig(
        epochs=epochs,
        batch_size=8,
        learning_rate=0.05,
        seed=seed,
        backend="jax",
        decay_rate=decay_rate,
        keep_checkpoints=keep_checkpoints,
    )
    x_train, y_train, x_validation, y_validation = data or DATA
    return FitJob(
        x_train,
        y_train,
        x_validation,
        y_validation,
        model or ModelConfig(),
        training,
        ArtifactStore(root),
        stations=stations,
    )


def history(run: TrainingRun) -> list[dict[str, Any]]:
    return [record.model_dump() for record in run.history]


def predictions(run: TrainingRun, x: np.ndarray, stations: np.ndarray | None = None) -> list:
    """The last checkpoint's predictions, loaded back from its .keras file on JAX."""
    import keras

    from tasks.models.zoo import model_inputs

    model = keras.saving.load_model(run.checkpoints[-1].path, compile=False)
    return model.predict(model_inputs(model, x, stations), verbose=0).ravel().tolist()


DATA = arrays()


def main(out: Path) -> None:
    results: dict[str, Any] = {}
    seeds = (0, 1, 2)
    singles = [fit_model_jax(job(out / f"single{seed}", seed)) for seed in seeds]
    results["singles"] = [history(run) for run in singles]
    results["single_device"] = singles[0].device.model_dump()
    results["checkpoints"] = [len(run.checkpoints) for run in singles]
    again = fit_model_jax(job(out / "again", 0))
    results["again"] = history(again)
    vmapped = fit_members([job(out / "vmapped", seed) for seed in seeds])
    results["vmapped"] = [history(run) for run in vmapped]
    results["vmapped_device"] = vmapped[0].device.model_dump()
    # Epochs differ: member 0 stops after 2, the others go on to 3.
    uneven = fit_members([job(out / "uneven", s, epochs=2 if s == 0 else 3) for s in seeds])
    results["uneven"] = [history(run) for run in uneven]
    results["uneven_checkpoints"] = [len(run.checkpoints) for run in uneven]
    try:
        fit_members([job(out / "bad", 0), job(out / "bad", 1, model=ModelConfig(hidden_units=8))])
    except ValueError as error:
        results["refused"] = str(error)
    results["x_validation"] = DATA[2].tolist()
    results["predictions"] = predictions(singles[0], DATA[2])
    results["model_file"] = singles[0].checkpoints[-1].path

    dropout = ModelConfig(architecture="dropout", dropout=0.2)
    results["dropout"] = [
        history(fit_model_jax(job(out / f"dropout{n}", 5, model=dropout))) for n in range(2)
    ]
    results["dropout_vmapped"] = [
        history(run) for run in fit_members([job(out / "dv", s, model=dropout) for s in (5, 6)])
    ]
    results["no_dropout"] = history(fit_model_jax(job(out / "nodropout", 5)))

    two_input, shared = (
        ModelConfig(architecture="two-input"),
        ModelConfig(architecture="shared-weather"),
    )
    results["two_input"] = history(fit_model_jax(job(out / "two", 0, epochs=4, model=two_input)))
    results["shared_weather"] = history(
        fit_model_jax(job(out / "shared", 0, epochs=4, model=shared))
    )
    _stations(out, results)
    _memmap(out, results)
    _chosen(out, results)
    (out / "results.json").write_text(json.dumps(results))


# Validation targets against the training signal: the validation loss rises as training
# learns, so the chosen epoch is early (seed 0: epoch 1, seed 1: epoch 2) and not the last.
FLIPPED = [DATA[0], DATA[1], DATA[2], -DATA[3]]
RESUME_EPOCHS = 6


def store_files(root: Path, suffix: str) -> list[str]:
    """The paths of the store's objects with this suffix, sorted."""
    return sorted(str(path) for path in (root / "objects").glob(f"*/*{suffix}"))


def _chosen(out: Path, results: dict[str, Any]) -> None:
    """keep_checkpoints: chosen (the default) and all, counting the .keras files as it goes."""
    for keep in ("chosen", "all"):
        root = out / f"keep-{keep}"
        during: list[int] = []

        def count(record: Any, root: Path = root, during: list[int] = during) -> None:
            during.append(len(store_files(root, ".keras")))

        trained = job(root, 0, RESUME_EPOCHS, data=FLIPPED, decay_rate=1.0, keep_checkpoints=keep)
        trained = replace(trained, journal=EpochJournal(trained.store, "keep" + keep, "jax"))
        run = fit_model_jax(trained, on_epoch=count)
        results[f"keep_{keep}"] = {
            "keras_during": during,
            "keras_after_training": store_files(root, ".keras"),
            "run_checkpoints": [c.path for c in run.checkpoints],
            "checkpoint_epochs": list(run.checkpoint_epochs),
            "history": history(run),
        }
        kept = retain_checkpoints(trained, run)
        results[f"keep_{keep}"] |= {
            "kept_checkpoints": [c.path for c in kept.checkpoints],
            "kept_epochs": list(kept.checkpoint_epochs),
            "keras_after_retention": store_files(root, ".keras"),
            "states_after": store_files(root, ".npz"),
        }


def _stations(out: Path, results: dict[str, Any]) -> None:
    """Two-input members with a station embedding; each station adds its own size."""
    rng = np.random.default_rng(3)
    rows, known = 240, 4
    station = rng.integers(1, known + 1, rows).astype(np.int32).reshape(-1, 1)
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    y = (x[:, :1] * 0.3 + (station - 2.5) * 0.8).astype(np.float32)
    cut = 200
    data = [x[:cut], y[:cut], x[cut:], y[cut:]]
    inputs = StationInputs(train=station[:cut], validation=station[cut:], rows=known + 1)
    model = ModelConfig(architecture="two-input", station_embedding_dim=2)
    runs = fit_members(
        [job(out / "stations", s, 6, model, data, inputs, decay_rate=1.0) for s in (0, 1)],
    )
    results["stations"] = [history(run) for run in runs]
    results["stations_x_validation"] = data[2].tolist()
    results["stations_validation"] = inputs.validation.ravel().tolist()
    results["stations_predictions"] = predictions(runs[0], data[2], inputs.validation)
    results["stations_model_file"] = runs[0].checkpoints[-1].path


def _memmap(out: Path, results: dict[str, Any]) -> None:
    """Memory-mapped arrays fed block by block (a small block, so several and a partial one)."""
    folder = out / "arrays"
    folder.mkdir()
    mapped = []
    for index, array in enumerate(arrays(rows=600)):
        np.save(folder / f"{index}.npy", array)
        mapped.append(np.load(folder / f"{index}.npy", mmap_mode="r", allow_pickle=False))
    jax_feed.IN_MEMORY_BYTES = 0
    jax_feed.BLOCK_ROWS = 96
    feed = jax_feed.Feed(job(out / "feed", 0, data=mapped), [0], None)
    seen = [
        np.asarray(x)[order[mask > 0]] for order, mask, x, _, _ in feed.epoch(0)
    ]  # each block's rows, in the order the steps read them
    results["memmap_in_memory"] = feed.in_memory
    results["memmap_blocks"] = len(seen)
    every = np.concatenate(seen)
    results["memmap_rows_once"] = bool(
        len(every) == len(mapped[0])
        and np.array_equal(np.unique(every, axis=0), np.unique(np.asarray(mapped[0]), axis=0))
    )
    single = fit_model_jax(job(out / "mm1", 0, epochs=3, data=mapped))
    pair = fit_members([job(out / "mm2", s, epochs=3, data=mapped) for s in (0, 1)])
    results["memmap_single"] = history(single)
    results["memmap_pair"] = [history(run) for run in pair]


def _resume_jobs(root: Path, seeds: tuple[int, ...]) -> list[FitJob]:
    """Journaled jobs of the default keep_checkpoints (chosen) on the flipped data."""
    jobs = [
        job(root, seed, RESUME_EPOCHS, data=FLIPPED, decay_rate=1.0, keep_checkpoints="chosen")
        for seed in seeds
    ]
    return [
        replace(one, journal=EpochJournal(one.store, f"member{index}", "jax"))
        for index, one in enumerate(jobs)
    ]


# Kill the single training after epoch 4 (not a new best: seed 0's best is epoch 1), and the
# pair between its members' journal writes of epoch 4 (member 0 has it, member 1 not yet).
KILLS = {"single": ((0,), 0, 4), "pair": ((0, 1), 0, 4)}


def kill(out: Path, name: str) -> None:
    """Train a resume scenario and SIGKILL this process after its member's epoch."""
    seeds, member, epoch = KILLS[name]

    def on_epoch(index: int, record: Any) -> None:
        if index == member and record.epoch == epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    fit_members(_resume_jobs(out / f"killed-{name}", seeds), on_epoch=on_epoch)
    raise SystemExit("the training ended without being killed")


def _weights(path: str) -> list[np.ndarray]:
    """A .keras file's weights and optimizer variables, loaded on JAX."""
    import keras

    model = keras.saving.load_model(path, compile=True, safe_mode=True)
    return [*model.get_weights(), *(np.asarray(v) for v in model.optimizer.variables)]


def _same_files(a: list[str], b: list[str]) -> bool:
    """Whether two lists of .keras files hold the same arrays, bit for bit, pair by pair."""
    if len(a) != len(b):
        return False
    pairs = [(_weights(x), _weights(y)) for x, y in zip(a, b, strict=True)]
    return all(
        len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))
        for x, y in pairs
    )


def _journal(one: FitJob) -> Any:
    from tasks.storage.journal import read_journal

    assert one.journal is not None
    return read_journal(one.store, one.journal.name)


def resume(out: Path) -> None:
    """Resume the killed scenarios, train them uninterrupted too, and compare."""
    import keras

    from tasks.models.zoo import model_inputs

    results: dict[str, Any] = {}
    for name, (seeds, _, _) in KILLS.items():
        root = out / f"killed-{name}"
        logs: list[str] = []
        resumed_jobs = _resume_jobs(root, seeds)
        resumed = [
            retain_checkpoints(one, run)
            for one, run in zip(
                resumed_jobs, fit_members(resumed_jobs, log=logs.append), strict=True
            )
        ]
        reference_jobs = _resume_jobs(out / f"reference-{name}", seeds)
        reference = [
            retain_checkpoints(one, run)
            for one, run in zip(reference_jobs, fit_members(reference_jobs), strict=True)
        ]
        chosen = [
            next(
                c.path
                for c, e in zip(run.checkpoints, run.checkpoint_epochs, strict=True)
                if e != RESUME_EPOCHS
            )
            for run in resumed
        ]
        model = keras.saving.load_model(chosen[0], compile=False)
        results[name] = {
            "logs": logs,
            "resumed_from": [run.resumed_from for run in resumed],
            "same_history": [
                a.history == b.history for a, b in zip(resumed, reference, strict=True)
            ],
            "histories": [history(run) for run in resumed],
            "kept_epochs": [list(run.checkpoint_epochs) for run in resumed],
            "same_files": [
                _same_files([c.path for c in a.checkpoints], [c.path for c in b.checkpoints])
                for a, b in zip(resumed, reference, strict=True)
            ],
            "keras_files": store_files(root, ".keras"),
            "journal_states": [
                sum("state" in entry for entry in _journal(one)["epochs"]) for one in resumed_jobs
            ],
            "chosen_file": chosen[0],
            "chosen_predictions": model.predict(model_inputs(model, DATA[2], None), verbose=0)
            .ravel()
            .tolist(),
        }
    results["x_validation"] = DATA[2].tolist()
    (out / "resume.json").write_text(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[2:3] == ["kill"]:
        kill(Path(sys.argv[1]), sys.argv[3])
    elif sys.argv[2:3] == ["resume"]:
        resume(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
