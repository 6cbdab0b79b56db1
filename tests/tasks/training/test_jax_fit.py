"""The JAX trainer (tasks/training/jax_fit.py): vmapped members, reruns, resume, and its files.

The scenarios train in one fresh interpreter on the JAX backend (jax_scenarios.py), since this
process's Keras runs on TensorFlow; the child-process tests go through the training child,
which chooses the backend from the request.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.errors import TrainingError
from tasks.storage.descriptors import EpochRecord
from tasks.storage.journal import read_journal
from tasks.storage.store import ArtifactStore
from tasks.training.epoch_choice import retained_epochs
from tasks.training.request import FitRequest
from tasks.training.task import EpochJournal, run_training_process
from tests.tasks.training.test_resume import _children_running
from tests.tasks.training.test_resume import _request as resume_request

pytestmark = [pytest.mark.slow, pytest.mark.minutes(4)]

ROOT = Path(__file__).parents[3]
SCENARIOS = Path(__file__).with_name("jax_scenarios.py")
# vmapped members run the same steps as a batched program; XLA may sum in another order.
TOLERANCE = 1e-5


def _python(arguments: list[str], backend: str, timeout: float) -> subprocess.CompletedProcess:
    """Run a fresh interpreter at the project root with Keras on ``backend``."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("jax")
    done = _python([str(SCENARIOS), str(out)], "jax", timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "results.json").read_text())


def _close(a: list[dict[str, Any]], b: list[dict[str, Any]], tolerance: float = TOLERANCE) -> bool:
    """Same epochs and rates; losses equal within ``tolerance`` (relative)."""
    return [r["epoch"] for r in a] == [r["epoch"] for r in b] and all(
        ra["learning_rate"] == rb["learning_rate"]
        and math.isclose(ra["loss"], rb["loss"], rel_tol=tolerance)
        and math.isclose(ra["val_loss"], rb["val_loss"], rel_tol=tolerance)
        for ra, rb in zip(a, b, strict=True)
    )


def test_the_same_seed_gives_the_same_history_bit_for_bit(results):
    assert results["again"] == results["singles"][0]
    assert results["dropout"][0] == results["dropout"][1]  # dropout's masks too
    assert results["singles"][0] != results["singles"][1]  # the seed matters


def test_vmapped_members_train_as_their_single_trainings(results):
    for vmapped, single in zip(results["vmapped"], results["singles"], strict=True):
        assert _close(vmapped, single)
    assert _close(results["dropout_vmapped"][0], results["dropout"][0])
    assert results["vmapped_device"]["strategy"] == "jax.vmap over 3 members"


def test_members_stop_at_their_own_epochs(results):
    uneven = results["uneven"]
    assert [len(history) for history in uneven] == [2, 3, 3]
    assert results["uneven_checkpoints"] == [2, 3, 3]
    assert _close(uneven[0], results["singles"][0][:2])
    assert _close(uneven[2], results["singles"][2])


def test_members_that_cannot_share_a_program_are_refused(results):
    assert "cannot train as one program" in results["refused"]
    assert "model" in results["refused"] and "seed 1" in results["refused"]


def test_training_learns_on_the_seeds_schedule_with_a_checkpoint_an_epoch(results):
    history = results["singles"][0]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    # The seed's schedule (decay 0.5 an epoch), read from the optimizer after each epoch.
    rates = [record["learning_rate"] for record in history]
    assert rates == pytest.approx([0.05 * 0.5 ** (epoch + 1) for epoch in range(3)], rel=1e-6)
    assert results["checkpoints"] == [3, 3, 3]
    device = results["single_device"]
    assert device["backend"] == "jax" and device["jax_version"]
    assert device["strategy"] == "jax.jit (one member)"


def test_dropout_two_input_shared_layers_and_stations_train(results):
    assert results["dropout"][0] != results["no_dropout"]
    for history in (results["dropout"][0], results["two_input"], results["shared_weather"]):
        assert all(math.isfinite(r["loss"]) for r in history)
        assert history[-1]["loss"] < history[0]["loss"]
    for history in results["stations"]:
        # The station explains most of the target: the embedding must have learned it.
        assert history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]


def test_memory_mapped_arrays_feed_block_by_block_every_row_once(results):
    assert results["memmap_in_memory"] is False
    assert results["memmap_blocks"] == 6  # 500 rows in blocks of 96: five and a partial one
    assert results["memmap_rows_once"]
    single, pair = results["memmap_single"], results["memmap_pair"]
    assert single[-1]["loss"] < single[0]["loss"]
    assert _close(pair[0], single)


def _under_tensorflow(script: str, path: Path, results: dict) -> Any:
    """Run ``script`` in a fresh interpreter with Keras on TensorFlow, ``results`` written to
    ``path`` as its argument; the JSON of its last line."""
    path.write_text(json.dumps(results))
    done = _python(["-c", script, str(path)], "tensorflow", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_jax_trained_keras_file_predicts_the_same_under_tensorflow(results):
    script = (
        "import json, sys\n"
        "import keras, numpy as np\n"
        "from tasks.models.zoo import model_inputs\n"
        "assert keras.backend.backend() == 'tensorflow'\n"
        "r = json.loads(open(sys.argv[1]).read())\n"
        "def predict(path, x, stations=None):\n"
        "    model = keras.saving.load_model(path, compile=True, safe_mode=True)\n"
        "    inputs = model_inputs(model, np.asarray(x, np.float32), stations)\n"
        "    return model.predict(inputs, verbose=0).ravel().tolist()\n"
        "print(json.dumps([predict(r['model_file'], r['x_validation']),\n"
        "    predict(r['stations_model_file'], r['stations_x_validation'],\n"
        "            np.asarray(r['stations_validation'], np.int32))]))\n"
    )
    path = Path(results["model_file"]).parents[0] / "results-copy.json"
    plain, stations = _under_tensorflow(script, path, results)
    assert np.allclose(plain, results["predictions"], atol=1e-3, rtol=0)
    assert np.allclose(stations, results["stations_predictions"], atol=1e-3, rtol=0)
    assert np.std(plain) > 0.01  # a model that predicts something


def test_the_default_writes_only_the_keras_files_retention_keeps(results):
    chosen, every = results["keep_chosen"], results["keep_all"]
    history = [EpochRecord.model_validate(record) for record in chosen["history"]]
    retained = list(retained_epochs(history))
    assert len(retained) == 2  # the flipped validation data: an early epoch is chosen
    # No .keras file while training (none written and deleted), then one per retained epoch.
    assert chosen["keras_during"] == [0] * len(history)
    assert chosen["checkpoint_epochs"] == retained == chosen["kept_epochs"]
    assert sorted(chosen["run_checkpoints"]) == chosen["keras_after_training"]
    assert chosen["keras_after_retention"] == chosen["keras_after_training"]
    assert chosen["kept_checkpoints"] == chosen["run_checkpoints"]
    assert chosen["states_after"] == []  # the resume states go when training ends
    # keep_checkpoints: all still writes one every epoch, as the training goes.
    assert every["keras_during"] == list(range(1, len(history) + 1))
    assert len(every["kept_checkpoints"]) == len(history) and every["kept_epochs"] == []
    assert every["history"] == chosen["history"]  # the files kept change no number


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The resume scenarios: SIGKILLed after an epoch (jax_scenarios.KILLS), then resumed."""
    out = tmp_path_factory.mktemp("jax-resume")
    runs = [[str(out), "kill", "single"], [str(out), "kill", "pair"], [str(out), "resume"]]
    for arguments, code in zip(runs, (-signal.SIGKILL, -signal.SIGKILL, 0), strict=True):
        done = _python([str(SCENARIOS), *arguments], "jax", timeout=900)
        assert done.returncode == code, done.stderr[-4000:]
    return json.loads((out / "resume.json").read_text())


def test_a_kill_after_an_epoch_that_is_no_new_best_resumes_after_it(resumed):
    single = resumed["single"]
    # Killed after epoch 4; seed 0's best is epoch 1, whose state alone makes its .keras.
    assert single["logs"][0].startswith("resuming after epoch 4 from ")
    assert single["resumed_from"] == [4] and single["same_history"] == [True]
    history = [EpochRecord.model_validate(record) for record in single["histories"][0]]
    assert single["kept_epochs"] == [list(retained_epochs(history))] == [[1, 6]]
    assert single["same_files"] == [True]  # chosen and last: weights and optimizer, bit for bit
    assert len(single["keras_files"]) == 2 and single["journal_states"] == [0]


def test_a_pair_with_different_best_epochs_resumes_from_their_common_epoch(resumed):
    pair = resumed["pair"]
    # Killed between the members' journal writes of epoch 4: both resume after epoch 3.
    assert [line.split()[3] for line in pair["logs"][:2]] == ["3", "3"]
    assert pair["resumed_from"] == [3, 3] and pair["same_history"] == [True, True]
    assert pair["kept_epochs"] == [[1, 6], [2, 6]]  # the members chose different epochs
    assert pair["same_files"] == [True, True]
    assert len(pair["keras_files"]) == 4 and pair["journal_states"] == [0, 0]


def test_a_resumed_chosen_keras_file_predicts_the_same_under_tensorflow(resumed, tmp_path):
    script = (
        "import json, sys\n"
        "import keras, numpy as np\n"
        "from tasks.models.zoo import model_inputs\n"
        "assert keras.backend.backend() == 'tensorflow'\n"
        "r = json.loads(open(sys.argv[1]).read())\n"
        "path = r['single']['chosen_file']\n"
        "model = keras.saving.load_model(path, compile=True, safe_mode=True)\n"
        "x = model_inputs(model, np.asarray(r['x_validation'], np.float32), None)\n"
        "print(json.dumps(model.predict(x, verbose=0).ravel().tolist()))\n"
    )
    predicted = _under_tensorflow(script, tmp_path / "resume-copy.json", resumed)
    assert np.allclose(predicted, resumed["single"]["chosen_predictions"], atol=1e-3, rtol=0)
    assert np.std(predicted) > 1e-4


def _with(request: FitRequest, **training: Any) -> FitRequest:
    return request.model_copy(update={"training": request.training.model_copy(update=training)})


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_tutorial_recipe_trains_through_the_child_on_either_backend(
    tmp_path: Path, backend: str
):
    # The tutorial's network and loop (seed-mlp, SGD with momentum, batch 4) on 631 rows.
    request = _with(resume_request(tmp_path, train_rows=631), epochs=3, backend=backend)
    epochs: list[int] = []
    run = run_training_process(request, lambda record, total: epochs.append(record.epoch), print)
    assert epochs == [1, 2, 3] and run.device.backend == backend
    assert (run.device.jax_version is not None) == (backend == "jax")
    assert run.history[-1].loss < run.history[0].loss
    rates = [record.learning_rate for record in run.history]
    assert rates == pytest.approx([0.02 * 0.5 ** (epoch + 1) for epoch in range(3)], rel=1e-6)
    assert all(Path(c.path).suffix == ".keras" for c in run.checkpoints)
    journal = read_journal(ArtifactStore(tmp_path), request.journal_name())
    assert journal["libraries"]["keras backend"] == backend and "jax" in journal["libraries"]


def test_a_killed_jax_training_resumes_with_the_uninterrupted_history(tmp_path: Path):
    # Enough rows that an epoch's one compiled call lasts long enough to be killed inside it.
    def request(root: Path) -> FitRequest:
        return _with(resume_request(root, train_rows=120_000), backend="jax")

    uninterrupted = run_training_process(request(tmp_path / "a"), lambda r, n: None, print)
    assert uninterrupted.resumed_from == 0

    killed_request = request(tmp_path / "b")
    store, name = ArtifactStore(tmp_path / "b"), killed_request.journal_name()
    killed: dict[str, float] = {}

    def kill_early_in_epoch_three() -> None:
        deadline = time.monotonic() + 600
        finished: dict[int, float] = {}
        while time.monotonic() < deadline and 2 not in finished:
            journal = read_journal(store, name) or {}
            finished.setdefault(len(journal.get("epochs", [])), time.monotonic())
            time.sleep(0.002)
        # 10% of epoch 2's time after its journal entry: inside epoch 3's compiled scan.
        time.sleep(0.1 * (finished[2] - finished.get(1, finished[2] - 1.0)))
        for pid in _children_running("tasks.training.child"):
            os.kill(pid, signal.SIGKILL)
            killed["done"] = 1.0

    killer = threading.Thread(target=kill_early_in_epoch_three)
    killer.start()
    seen: list[int] = []
    with pytest.raises(TrainingError, match="killed by signal 9"):
        run_training_process(killed_request, lambda record, n: seen.append(record.epoch), print)
    killer.join()
    assert killed and seen == [1, 2]
    # The journal records the JAX backend: read it as the JAX child does.
    survived = EpochJournal(store, name, backend="jax").completed()
    assert [record for record, _ in survived] == list(uninterrupted.history[:2])

    resumed = run_training_process(killed_request, lambda r, n: None, print)
    assert resumed.resumed_from == 2
    assert resumed.history == uninterrupted.history  # bit for bit
