"""prefect.yaml: every deployment's parameters are valid overrides of the config model."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
RETRAINING = ("retrain-nightly", "retrain-adhoc")


def by_name(name: str) -> dict[str, Any]:
    return next(d for d in DEPLOYMENTS if d["name"] == name)


def leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def config_model(deployment: dict[str, Any]) -> type[BaseModel]:
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    return _annotation(flow)


def _annotation(flow) -> type[BaseModel]:
    import inspect

    annotation = inspect.signature(flow.fn, eval_str=True).parameters["config"].annotation
    assert issubclass(annotation, BaseModel)
    return annotation


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_parameters_are_valid_overrides_of_the_config_defaults(deployment: dict[str, Any]):
    parameters = deployment.get("parameters") or {}
    assert set(parameters) <= {"config"}, f"unknown flow parameters {set(parameters)}"
    overrides = parameters.get("config", {})
    model = config_model(deployment)
    config = model.model_validate(overrides)  # extra="forbid": a misspelt field fails here
    defaults = model().model_dump(mode="json")
    for path, value in leaves(overrides):
        default: Any = defaults
        for key in path:
            default = default[key]
        assert value != default, f"{'.'.join(path)} restates the default {default!r}"
        actual: Any = config.model_dump(mode="json")
        for key in path:
            actual = actual[key]
        assert actual == value

    # The server checks parameters against this schema (enforce_parameter_schema).
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    schema = parameter_schema(flow).model_dump_for_openapi()
    assert validate(parameters, schema) == []


def test_retraining_deployments_run_one_at_a_time_on_one_pool():
    pools = {d["work_pool"]["name"] for d in DEPLOYMENTS}
    assert pools == {"bikeflow-gpu"}
    for name in RETRAINING:
        assert by_name(name)["concurrency_limit"]["limit"] == 1
    assert by_name("retrain-nightly")["schedules"][0]["cron"]
    assert by_name("retrain-nightly")["schedules"][0]["timezone"]


def test_run_form_shows_descriptions_defaults_bounds_and_choices():
    flow = load_flow_from_entrypoint(str(ROOT / "flows/retrain.py:retrain"))
    schema = parameter_schema(flow).model_dump_for_openapi()
    definitions = schema["definitions"]
    fields = 0
    for definition in definitions.values():
        for name, field in definition["properties"].items():
            fields += 1
            assert field.get("description"), f"{name} has no description"
            assert "default" in field, f"{name} has no default on the form"
            if field.get("type") in ("integer", "number"):
                assert {"minimum", "exclusiveMinimum"} & set(field), f"{name} has no lower bound"
                assert {"maximum", "exclusiveMaximum"} & set(field), f"{name} has no upper bound"
    assert fields > 15
    optimizer = definitions["TrainingConfig"]["properties"]["optimizer"]
    assert optimizer["enum"] == ["sgd", "adam"]  # a dropdown
    bad = {"config": {"training": {"epochs": 0}}}
    assert validate(bad, schema) != []
