import ast
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.retrain import retrain
from schemas.config import RetrainConfig
from schemas.errors import ArtifactError
from tasks.promotion.registry import Registry

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def test_flows_never_leave_task_futures_unresolved():
    # A submitted future nobody resolves lets a flow end Completed around a failed task.
    # Flows call their tasks directly, or (the sweep's parallel trainings) resolve every
    # future they submit with .result() in the same function, which raises on failure.
    offenders = []
    for module in sorted(FLOWS.glob("*.py")):
        for function in ast.walk(ast.parse(module.read_text())):
            if not isinstance(function, ast.FunctionDef):
                continue
            attributes = [n for n in ast.walk(function) if isinstance(n, ast.Attribute)]
            resolves = any(n.attr == "result" for n in attributes)
            for node in attributes:
                if node.attr in ("submit", "map", "delay") and not resolves:
                    offenders.append(f"{module.name}:{node.lineno} .{node.attr}")
    assert offenders == []


@pytest.mark.slow
def test_failing_last_task_fails_the_run_and_keeps_the_champion(small_config: RetrainConfig):
    first = retrain(small_config, return_state=True)
    assert first.is_completed()
    registry = Registry(small_config.registry_root)
    pointer = registry.pointer.read_bytes()
    champion = registry.require_champion().version

    # A rerun is fully cached and hands in the same model: rejected, pointer untouched.
    assert retrain(small_config, return_state=True).is_completed()
    assert registry.pointer.read_bytes() == pointer
    with get_client(sync_client=True) as client:
        decisions = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["promotion-decision"]))
        )
    assert any("rejected" in str(artifact.data) for artifact in decisions)

    # A registry whose champion pointer is garbage: promotion (the last task) fails, so does
    # the run. (A registry root that is a file is refused before the run starts.)
    broken = small_config.model_copy(
        update={"registry_root": str(registry.root.with_name("models-broken"))}
    )
    Path(broken.registry_root).mkdir()
    (Path(broken.registry_root) / "champion.json").write_text("not a pointer")
    state = retrain(broken, return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ArtifactError)
    assert Registry(small_config.registry_root).require_champion().version == champion
