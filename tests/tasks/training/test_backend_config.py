"""training.backend: the field, its flag and form dropdown, tf-core's refusal, and the child
as the one place that sets KERAS_BACKEND (before anything imports Keras)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.config import DEFAULT_TRAINING_BACKEND, RetrainConfig, TrainingConfig
from tasks.training.child import keras_backend_of
from tasks.training.request import FitRequest

ROOT = Path(__file__).parents[3]


def test_the_backend_is_tensorflow_or_jax():
    assert TrainingConfig().backend == DEFAULT_TRAINING_BACKEND
    assert TrainingConfig(backend="jax").backend == "jax"
    with pytest.raises(ValidationError, match="backend"):
        TrainingConfig(backend="torch")


def test_tf_core_on_jax_is_a_config_error_naming_the_field():
    with pytest.raises(ValidationError) as refused:
        RetrainConfig(model={"architecture": "tf-core"}, training={"backend": "jax"})
    message = str(refused.value)
    assert "training.backend" in message and "tf-core" in message
    # tf-core's zoo entry chooses TensorFlow, whichever backend is the default.
    assert RetrainConfig(model={"architecture": "tf-core"}).training.backend == "tensorflow"
    assert RetrainConfig(training={"backend": "jax"}).training.backend == "jax"


def test_the_backend_is_a_flag_with_its_two_choices(capsys):
    from flows.cli.main import main, make_parser

    assert make_parser().parse_args(["run", "--backend", "jax"]).backend == "jax"
    with pytest.raises(SystemExit) as exited:
        main(["run", "--backend", "torch"])
    assert exited.value.code == 2
    assert "--backend" in capsys.readouterr().err


def test_the_run_form_offers_the_backend_as_a_dropdown():
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    flow = load_flow_from_entrypoint(str(ROOT / "flows/retrain.py:retrain"))
    schema = parameter_schema(flow).model_dump_for_openapi()
    backend = schema["definitions"]["TrainingConfig"]["properties"]["backend"]
    assert backend["enum"] == ["tensorflow", "jax"]
    assert backend["default"] == DEFAULT_TRAINING_BACKEND and "tf-core" in backend["description"]


def test_tf_core_trains_on_tensorflow_in_the_child_whatever_the_request_says():
    fields = FitRequest.model_fields
    assert {"model", "training"} <= set(fields)
    jax_request = FitRequest.model_construct(
        model=RetrainConfig().model, training=TrainingConfig(backend="jax")
    )
    assert keras_backend_of(jax_request) == "jax"
    tf_core = jax_request.model_copy(
        update={"model": RetrainConfig(model={"architecture": "tf-core"}).model}
    )
    assert keras_backend_of(tf_core) == "tensorflow"


def test_the_child_chooses_the_backend_before_anything_imports_keras():
    # The child's module and everything it imports to read a request import no Keras, so the
    # backend it sets from the request is the one Keras loads.
    script = (
        "import sys\n"
        "import tasks.training.child as child\n"
        "import tasks.training.jax_fit, tasks.training.jax_steps, tasks.training.jax_feed\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_no_library_code_but_the_child_sets_keras_backend():
    setting = re.compile(
        r"""(environ\[\s*["']KERAS_BACKEND["']\s*\]\s*=|setdefault\(\s*["']KERAS_BACKEND|putenv\(\s*["']KERAS_BACKEND)"""
    )
    setters = sorted(
        str(path.relative_to(ROOT))
        for package in ("flows", "tasks", "schemas")
        for path in (ROOT / package).rglob("*.py")
        if setting.search(path.read_text())
    )
    assert setters == ["tasks/training/child.py"]
