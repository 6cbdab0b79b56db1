"""The model card's sections and the lineage a model records (no Prefect flow run here)."""

from __future__ import annotations

import subprocess

import pytest

from tasks.evaluation import lineage as lineage_module
from tasks.evaluation.lineage import LIBRARIES, gather_lineage
from tasks.evaluation.model_card import STORM_DAY, full_model_card

SECTIONS = (
    "## Intended use",
    "## Training data",
    "## Evaluation",
    "## Limitations",
    "## Lineage",
    "## Model details",
)


def metrics(first: str, last: str) -> dict:
    scores = {"rmse": 900.0, "mae": 700.0, "r2": 0.4, "wape": 0.2}
    return {
        "test_rmse": 650.0,
        "test_mae": 480.0,
        "test_r2": 0.8,
        "baselines": {"training_mean": scores},
        "source": "day.csv",
        "data_sha256": "a" * 64,
        "rows": 731,
        "data_first_date": first,
        "data_last_date": last,
        "split": {"test": {"first_date": "2012-09-23", "last_date": last, "days": 100}},
        "lineage": gather_lineage("a" * 64, {"seed": 0}).model_dump(mode="json"),
    }


def test_the_card_has_the_common_sections_in_order():
    card = full_model_card(
        "# Model card\n\n- Architecture: `seed-mlp`\n", metrics("2011-01-01", "2012-12-31")
    )
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert card.count("# Model card") == 1  # the training card's title became a section
    assert "- Architecture: `seed-mlp`" in card.split("## Model details")[1]
    assert "2011-01-01 .. 2012-12-31, 731 rows" in card
    assert "| model | 650 | 480 | 0.800 |" in card and "| training_mean | 900 |" in card
    assert "a" * 64 in card


def test_the_storm_day_is_a_limitation_only_when_the_data_hold_it():
    assert STORM_DAY in full_model_card("# Model card\n", metrics("2011-01-01", "2012-12-31"))
    assert STORM_DAY not in full_model_card("# Model card\n", metrics("2011-01-01", "2011-12-31"))


def test_lineage_outside_a_flow_run_records_code_and_libraries():
    found = gather_lineage("b" * 64, {"seed": 3})
    assert found.flow_run is None
    assert set(LIBRARIES) <= set(found.libraries) and found.libraries["numpy"]
    assert found.libraries["keras backend"]  # the backend is part of the record
    head = subprocess.run(
        ["git", "-C", str(lineage_module.SOURCE_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found.git is not None and found.git.commit == head
    assert found.source_sha256 == "b" * 64 and found.config == {"seed": 3}


def test_without_git_the_commit_is_none(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "")  # git cannot be found
    assert gather_lineage("c" * 64, {}).git is None
