"""The library versions in keys and journals: read from the installed metadata without importing
the library, the Keras backend by Keras's own rule, and a resume refused across versions."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.storage.library_versions import (
    TRAINING_LIBRARIES,
    installed_version,
    keras_backend,
    library_versions,
    resume_refusal,
)

PROJECT = Path(__file__).resolve().parents[3]
# The environment of the fresh interpreters: Keras's backend only as each test sets it.
BASE_ENV = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}


def fake_distribution(folder: Path, name: str, version: str) -> Path:
    """A folder whose only content is an installed-distribution record of ``name`` ``version``."""
    record = folder / f"{name}-{version}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


def python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter of this project with ``env`` added; its output."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**BASE_ENV, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_versions_are_the_imported_libraries_own():
    versions = library_versions(("numpy", "pandas"))
    assert versions == {"numpy": np.__version__, "pandas": pd.__version__}
    assert installed_version("no-such-library-here") == "not installed"


def test_reading_the_versions_imports_no_library():
    code = (
        "import sys; from tasks.storage.library_versions import library_versions as v; "
        "found = v(('tensorflow', 'keras', 'numpy', 'pandas', 'pandera')); "
        "print(sorted(n for n in ('tensorflow', 'keras', 'numpy', 'pandas', 'pandera') "
        "if n in sys.modules), 'not installed' in found.values())"
    )
    assert python(code) == "[] False"


def test_an_installed_record_earlier_on_the_path_is_the_version_read(tmp_path: Path):
    fake = fake_distribution(tmp_path, "pandera", "9.9.9")
    code = "from tasks.storage.library_versions import installed_version; "
    code += "print(installed_version('pandera'))"
    assert python(code, PYTHONPATH=os.pathsep.join((str(fake), str(PROJECT)))) == "9.9.9"


def test_keras_brings_its_backend_and_the_backends_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"  # no keras.json, no KERAS_BACKEND: Keras's default
    versions = library_versions(("keras",))
    assert versions["keras backend"] == "tensorflow"
    assert versions["tensorflow"] == installed_version("tensorflow") != "not installed"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert library_versions(("keras",))["keras backend"] == "jax"
    assert "jax" in library_versions(("keras",))
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert library_versions(("keras",))["keras backend"] == "torch"


def keras_loads(env: dict[str, str]) -> str:
    """The backend a fresh ``import keras`` loads: its name, or the module it failed to import."""
    done = subprocess.run(
        [sys.executable, "-c", "import keras; print(keras.config.backend())"],
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode == 0:
        return done.stdout.strip().splitlines()[-1]
    missing = re.search(r"No module named '(\w+)'", done.stderr)
    assert missing is not None, done.stderr[-2000:]
    return missing.group(1)


@pytest.mark.parametrize(
    ("setting", "environment", "backend"),
    [("openvino", {}, "openvino"), ("openvino", {"KERAS_BACKEND": "torch"}, "torch")],
    ids=["keras.json", "KERAS_BACKEND over keras.json"],
)
def test_the_backend_read_is_the_one_keras_loads(
    tmp_path: Path, setting: str, environment: dict[str, str], backend: str
):
    # A backend whose library is absent: Keras names it as it fails, before loading anything
    # heavy (TensorFlow, the installed one, would not tell the rules apart).
    if importlib.util.find_spec(backend) is not None:
        pytest.skip(f"{backend} is installed: importing Keras would load it")
    (tmp_path / "keras.json").write_text(json.dumps({"backend": setting}))
    env = {"KERAS_HOME": str(tmp_path), **environment}
    ours = "from tasks.storage.library_versions import keras_backend; print(keras_backend())"
    assert python(ours, **env) == keras_loads(env) == backend


def test_train_models_key_names_the_libraries_its_journal_records():
    from tasks.training.task import train_model

    assert train_model.cache_policy.libraries == TRAINING_LIBRARIES


def test_a_journal_is_resumed_only_under_the_versions_that_wrote_it():
    now = library_versions(TRAINING_LIBRARIES)
    epochs = [{"record": {}, "checkpoint": {}}] * 2
    assert resume_refusal({}, TRAINING_LIBRARIES) is None
    assert resume_refusal({"epochs": [], "libraries": {}}, TRAINING_LIBRARIES) is None
    assert resume_refusal({"epochs": epochs, "libraries": now}, TRAINING_LIBRARIES) is None

    older = {**now, "tensorflow": "2.0.0"}
    refusal = resume_refusal({"epochs": epochs, "libraries": older}, TRAINING_LIBRARIES)
    assert refusal is not None
    assert f"tensorflow 2.0.0 -> {now['tensorflow']}" in refusal
    assert "2 journaled epoch(s)" in refusal and "afresh" in refusal
    unrecorded = resume_refusal({"epochs": epochs}, TRAINING_LIBRARIES)
    assert unrecorded is not None and "records no library versions" in unrecorded
