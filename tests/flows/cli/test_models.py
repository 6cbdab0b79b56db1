"""``bikeflow models`` end to end: two real runs, then list, show, promote, pin and rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli.main import main
from schemas.synthetic import make_day_frame, to_csv_bytes

pytestmark = pytest.mark.slow


def test_models_commands_after_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    registry = ["--registry-root", str(tmp_path / "models")]
    common = ["run", "--source", str(source), "--store-root", str(tmp_path / "store")]
    common += [*registry, "--test-days", "30", "--batch-size", "16", "--epochs", "1"]
    for seed in (1, 2):  # two seeds: two different models, two versions
        assert (
            main([*common, "--output-dir", str(tmp_path / f"out{seed}"), "--seed", str(seed)]) == 0
        )
    capsys.readouterr()

    assert main(["models", "list", "--json", *registry]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 2
    first, second = (entry["version"] for entry in listed)
    assert listed[0]["decision"].startswith("first-champion")
    assert [entry["champion"] for entry in listed].count(True) == 1
    assert main(["models", "list", *registry]) == 0
    table = capsys.readouterr().out
    assert first in table and second in table and "champion" in table

    # show: the lineage of the run that made it, from its Prefect flow run.
    assert main(["models", "show", first, *registry]) == 0
    shown = capsys.readouterr().out
    for field in ("package:", "git commit:", "flow run:", "deployment:", "libraries:", "source:"):
        assert field in shown
    assert "tensorflow" in shown and "## Intended use" in shown and "## Lineage" in shown
    details = json.loads(_run_json(["models", "show", first, "--json", *registry], capsys))
    assert details["version"]["lineage"]["flow_run"]["id"]
    assert details["version"]["lineage"]["libraries"]["pandera"]

    # By hand: promote the second with a reason, pin, and a rollback refused while pinned.
    assert main(["models", "promote", second, "--reason", "canary passed", *registry]) == 0
    assert "promoted-by-hand: canary passed" in capsys.readouterr().out
    assert main(["models", "pin", second, *registry]) == 0
    assert main(["models", "rollback", *registry]) == 1
    assert "pinned" in capsys.readouterr().err
    assert main(["models", "unpin", *registry]) == 0
    assert main(["models", "rollback", *registry]) == 0
    assert f"champion now: {first}" in capsys.readouterr().out
    listed = json.loads(_run_json(["models", "list", "--json", *registry], capsys))
    assert [entry["champion"] for entry in listed] == [True, False]

    # A version that is not there: one paragraph naming it and what exists, exit 1.
    assert main(["models", "show", "nope", *registry]) == 1
    err = capsys.readouterr().err
    assert "'nope'" in err and first in err and second in err and "Traceback" not in err


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out
