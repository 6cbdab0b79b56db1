"""``bikeflow --version``: the installed versions, read without importing TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from flows.cli.version import keras_backend, version_text


def test_version_prints_the_installed_versions_without_importing_the_libraries():
    code = (
        "import sys\nfrom flows.cli.main import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(code, sorted({'tensorflow', 'keras', 'prefect'} & set(sys.modules)))"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        f"bikeflow {version('bikeflow')}",
        f"prefect {version('prefect')}",
        f"keras {version('keras')}",
        f"tensorflow {version('tensorflow')}",
    ]
    assert lines[4].startswith("keras backend ")
    assert lines[5] == "0 []"  # exit 0, and none of them imported


def test_the_backend_is_found_as_keras_finds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"  # no keras.json: Keras' default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert keras_backend() == "torch"
    assert version_text().endswith("keras backend torch")
