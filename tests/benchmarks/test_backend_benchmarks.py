"""Issue 22's benchmarks in quick mode (tiny sizes), so that their code cannot rot."""

import math

import pytest

from benchmarks import backend_seeds, flow_vs_plain, step_time

pytestmark = [pytest.mark.slow, pytest.mark.minutes(8)]


def test_step_time_measures_both_backends_and_jax_is_the_faster(
    capsys: pytest.CaptureFixture[str],
):
    result = step_time.main(["--quick"])
    assert "µs per step at batch 4" in capsys.readouterr().out
    medians = result["medians"]
    assert set(medians) == {
        "Keras fit on TensorFlow (fit_model)",
        "JAX loop, 1 member",
        "JAX loop, 3 members vmapped (all 3)",
        "fit_model_jax, whole epoch (+ validation, checkpoint)",
        "hand-written JAX, same MLP (no Keras)",
        "hand-written JAX, 3 members vmapped (all 3)",
    }
    assert all(value > 0 for value in medians.values())
    # The compiled scan has no per-step dispatch: far below Keras fit's step on TensorFlow.
    assert medians["JAX loop, 1 member"] < medians["Keras fit on TensorFlow (fit_model)"]


def test_flow_vs_plain_times_every_run_and_every_part_of_the_flow(
    capsys: pytest.CaptureFixture[str],
):
    result = flow_vs_plain.main(["--quick", "--backends", "jax"])
    out = capsys.readouterr().out
    assert "x plain" in out and "Where a cold flow run's seconds go" in out
    assert set(result["times"]) == {
        "plain forecaster",
        "bikeflow run --preset forecaster --backend jax, cold",
        "plain tutorial",
        "bikeflow run --backend jax, cold",
    }
    for name, runs in result["parts"].items():
        (parts,) = runs
        # Every mark was found in the log, in order.
        assert all(math.isfinite(v) and v >= -0.05 for v in parts.values()), (name, parts)
        assert parts["training"] > 0, (name, parts)
    assert all(score > 0 for values in result["scores"].values() for score in values)


def test_backend_seeds_runs_the_flow_on_both_backends(capsys: pytest.CaptureFixture[str]):
    results = backend_seeds.main(["--seeds", "0", "--recipes", "seed", "--epochs", "1"])
    out = capsys.readouterr().out
    assert "tensorflow: test RMSE" in out and "jax: test RMSE" in out
    assert [(r["recipe"], r["backend"]) for r in results] == [
        ("seed", "tensorflow"),
        ("seed", "jax"),
    ]
    for block in results:
        (run,) = block["runs"]
        assert run["seed"] == 0 and run["epochs"] == [1]
        assert run["val_rmse"] > 0 and run["test_rmse"] > 0
