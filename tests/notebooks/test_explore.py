"""notebooks/explore.ipynb runs top to bottom on the embedded Prefect default, writes nowhere
in the checkout, and is committed without outputs."""

import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.slow, pytest.mark.minutes(1)]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"
CHECKOUT = NOTEBOOK.parent.parent


def _checkout_status() -> str | None:
    """Untracked and changed files of the checkout (None when it is not a git work tree)."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout


def test_the_committed_notebook_has_no_outputs_and_no_execution_counts():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for index, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {index} has outputs: strip them before commit"
        assert cell.execution_count is None, f"code cell {index} has an execution count"


def test_the_notebook_runs_top_to_bottom_and_leaves_the_checkout_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    work = tmp_path / "work"
    # The kernel inherits this environment: Prefect's embedded default with its own home,
    # and every file under tmp_path (cwd included), so nothing lands in the checkout.
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    monkeypatch.setenv("BIKEFLOW_ROOTS", str(tmp_path))
    monkeypatch.setenv("BIKEFLOW_NOTEBOOK_DIR", str(work))
    monkeypatch.setenv("BIKEFLOW_NOTEBOOK_EPOCHS", "2")
    # The kernel imports the project as the tests do (CI installs it too).
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH")) if p)
    )
    before = _checkout_status()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error

    outputs = [cell.get("outputs", []) for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in outputs
        for output in cell
    )
    assert "first-champion" in text  # the registry's decisions were listed
    assert "predicted_cnt" in text  # new days were predicted
    assert any(
        "image/png" in output.get("data", {}) for cell in outputs for output in cell
    )  # the plots were drawn
    assert (work / "models" / "champion.json").is_file()
    assert len(list((work / "models" / "versions").iterdir())) == 2
    assert _checkout_status() == before
