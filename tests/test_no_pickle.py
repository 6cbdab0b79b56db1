"""No pickle anywhere: the code never imports it, never allows it, never loads models unsafely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Built from pieces so that this file does not match its own scan.
FORBIDDEN = {
    # Imports and calls, not the word: docstrings may say "no pickle".
    "pickle module": re.compile(
        r"^\s*(import|from)\s+(c?pickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)\b"
        r"|\b(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\.(loads?|dumps?|open)\(",
        re.MULTILINE,
    ),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*" + "True"),
    "safe_mode=False": re.compile(r"safe_mode\s*=\s*" + "False"),
    "pickle serializer": re.compile(r"""serializer\s*=\s*["']""" + "pickle"),
    "np.load without allow_pickle": re.compile(r"\bnp\.load\((?![^)]*allow_pickle)"),
}


def _sources() -> list[Path]:
    folders = ("flows", "tasks", "schemas", "benchmarks", "tests")
    files = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    return [p for p in files if p != Path(__file__).resolve()] + [
        p for p in (ROOT / "prefect.yaml", ROOT / "pyproject.toml") if p.is_file()
    ]


def _violations(text: str) -> list[str]:
    return [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]


def test_the_scan_finds_what_it_looks_for():
    assert _violations("import pickle") == ["pickle module"]
    assert _violations("x = cloudpickle.loads(b)") == ["pickle module"]
    assert _violations('task(result_serializer="' + 'pickle")') == ["pickle serializer"]
    assert _violations("np.load(path)") == ["np.load without allow_pickle"]
    assert _violations('"""never unpickling; no pickle"""') == []
    assert "allow_pickle=True" in _violations("np.load(p, allow_pickle=" + "True)")
    assert "safe_mode=False" in _violations("keras.saving.load_model(p, safe_mode=" + "False)")
    assert _violations("np.load(p, allow_pickle=False)") == []


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_in_the_code(path: Path):
    found = _violations(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_every_task_result_is_stored_as_json():
    from prefect import Task

    import flows.prepare as prepare_module
    import flows.retrain as retrain_module
    import flows.sweep as sweep_module
    import tasks.sweep.leaderboard as leaderboard_module
    import tasks.sweep.trials as trials_module

    modules = (prepare_module, retrain_module, sweep_module, leaderboard_module, trials_module)
    tasks = [v for m in modules for v in vars(m).values() if isinstance(v, Task)]
    assert {"ingest_source", "validate_records", "train_model", "train_trial"} <= {
        t.name for t in tasks
    }
    for task in tasks:
        if task.persist_result:
            assert task.result_serializer == "json", task.name
    assert retrain_module.retrain.result_serializer == "json"
    assert prepare_module.prepare_data.result_serializer == "json"
    assert sweep_module.sweep.result_serializer == "json"
