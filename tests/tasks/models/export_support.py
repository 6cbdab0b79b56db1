"""Serving an exported SavedModel the way a TensorFlow host would: in a process without bikeflow.

``serve_columns`` runs ``SERVING_SCRIPT`` with ``python -I`` (no script folder, no PYTHONPATH,
no user site) from an empty folder. The script refuses any import of bikeflow's packages
before it imports TensorFlow, loads the SavedModel with ``tf.saved_model.load``, calls its
``serving_default`` signature with one tensor per column (as TF Serving's REST API does with
the columnar ``inputs`` of a request) and writes the outputs as JSON, with what it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schemas.records import DATE_COLUMN, FLOAT_COLUMNS
from tasks.models.export import EXPORT_RECORD

SERVING_SCRIPT = """
import importlib.abc
import json
import sys
from pathlib import Path

PROJECT_PACKAGES = {"tasks", "schemas", "flows", "benchmarks"}


class RefuseBikeflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT_PACKAGES:
            raise ImportError(f"{name} is bikeflow's; this process must not import it")
        return None


model_dir, request_file, response_file = sys.argv[1:4]
sys.meta_path.insert(0, RefuseBikeflow())
# A folder on the path from which bikeflow's packages could be imported (its checkout).
on_path = [entry for entry in sys.path if (Path(entry or ".") / "schemas" / "records.py").exists()]

import tensorflow as tf

serve = tf.saved_model.load(model_dir).signatures["serving_default"]
_, specs = serve.structured_input_signature
responses = []
for request in json.loads(Path(request_file).read_text()):
    response = {"inputs": {name: spec.dtype.name for name, spec in specs.items()}}
    try:
        tensors = {name: tf.constant(request[name], spec.dtype) for name, spec in specs.items()}
        outputs = serve(**tensors)
        response["outputs"] = {name: value.numpy().tolist() for name, value in outputs.items()}
    except tf.errors.InvalidArgumentError as error:
        response["error"] = error.message
    responses.append(response)
imported = sorted(name for name in sys.modules if name.split(".")[0] in PROJECT_PACKAGES)
answer = {"responses": responses, "bikeflow_modules": imported, "project_on_path": on_path}
Path(response_file).write_text(json.dumps(answer))
"""


def request_columns(frame: pd.DataFrame, names: list[str]) -> dict[str, list[Any]]:
    """One list per column, as a REST request's ``inputs`` carries them (dates as text)."""
    columns: dict[str, list[Any]] = {}
    for name in names:
        values = frame[name]
        if name == DATE_COLUMN:
            columns[name] = pd.to_datetime(values).dt.strftime("%Y-%m-%d").tolist()
        elif name in FLOAT_COLUMNS:
            columns[name] = values.to_numpy(np.float64).tolist()
        else:
            columns[name] = values.to_numpy(np.int64).tolist()
    return columns


def serve_requests(
    model_dir: Path, requests: list[dict[str, list[Any]]], work: Path
) -> list[dict[str, Any]]:
    """Plain TensorFlow's responses to requests, from a process that never imports bikeflow.

    Each response has ``inputs`` (the signature's dtypes) and ``outputs``, or ``error`` (the
    message of the graph's ``InvalidArgumentError``).

    Asserts that the process imported nothing of bikeflow and had no project folder on its path.
    """
    work.mkdir(parents=True, exist_ok=True)
    script, request_file, response_file = (
        work / "serve.py",
        work / "request.json",
        work / "response.json",
    )
    script.write_text(SERVING_SCRIPT)
    request_file.write_text(json.dumps(requests))
    completed = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(model_dir),
            str(request_file),
            str(response_file),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(work),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        },
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(response_file.read_text())
    assert answer["bikeflow_modules"] == [] and answer["project_on_path"] == []
    return list(answer["responses"])


def serve_frame(model_dir: Path, frame: pd.DataFrame, work: Path) -> dict[str, np.ndarray]:
    """The exported model's outputs for the rows of a frame (every input column it names)."""
    names = list(json.loads((model_dir / EXPORT_RECORD).read_text())["inputs"])
    [response] = serve_requests(model_dir, [request_columns(frame, names)], work)
    assert "error" not in response, response.get("error")
    return {name: np.asarray(values) for name, values in response["outputs"].items()}


def export_command(argv: list[str]) -> int:
    """``bikeflow models export ...`` as the ``models`` command registers it."""
    import argparse

    from flows.cli.models import add_export_parser

    parser = argparse.ArgumentParser(prog="bikeflow models")
    add_export_parser(parser.add_subparsers(dest="models_command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def predict_and_serve(registry_root: Path, days: pd.DataFrame, work: Path) -> dict[str, Any]:
    """``bikeflow predict`` on the days' CSV and the exported champion served on the same rows.

    Returns the CSV's ``predicted_cnt`` and the served ``bikes`` and ``predicted_cnt``, with
    the largest distance between the served bikes and the CSV's counts.
    """
    from flows.cli.main import main

    work.mkdir(parents=True, exist_ok=True)
    (work / "days.csv").write_bytes(days.to_csv(index=False, lineterminator="\n").encode())
    output = work / "predictions.csv"
    flags = ["--registry-root", str(registry_root)]
    assert (
        main(
            ["predict", "--input-csv", str(work / "days.csv"), "--output-csv", str(output), *flags]
        )
        == 0
    )
    folder = work / "serving" / "bikeflow" / "1"
    assert export_command(["export", "champion", "--output-dir", str(folder), *flags]) == 0
    served = serve_frame(folder, days, work / "plain-tensorflow")
    counts = pd.read_csv(output)["predicted_cnt"].to_numpy()
    distance = np.abs(np.clip(served["bikes"], 0.0, None) - counts)
    return {"counts": counts, **served, "largest_distance": float(distance.max())}
