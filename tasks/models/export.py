"""Export a model bundle as a TensorFlow SavedModel any TensorFlow host can serve.

The SavedModel's ``serving_default`` signature takes the raw columns of the CSV that
``bikeflow predict`` reads, one tensor per column (``dteday`` a string ``YYYY-MM-DD``, the
integer columns int64, the weather columns float64, ``station`` int64 for a model trained per
station), and returns ``bikes`` (float64, the bundle's prediction) and ``predicted_cnt``
(int64: ``bikes`` clipped at 0 and rounded, the column ``bikeflow predict`` writes). Every
step between is in the graph (``tasks.models.export_graph``): the date parsed, the calendar
encoding and holiday windows, the scaling, the station lookup, the network (an ensemble
averages its members in the normalised space, inside the ``.keras`` model) and the inverse
target transform. Loading it needs TensorFlow, not bikeflow.

The folder is built under a temporary name beside ``output_dir`` and renamed into place; an
existing folder is replaced only if bikeflow made it (``schemas/ownership.py``).
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.errors import ArtifactError
from schemas.ownership import MARKER, marker_bytes
from schemas.paths import check_output_folder
from schemas.records import (
    DATE_COLUMN,
    FEATURE_COLUMNS,
    FLOAT_COLUMNS,
    HOUR_FEATURE_COLUMNS,
    STATION_COLUMN,
)
from tasks.models.bundle import ModelBundle
from tasks.models.zoo import STATION_INPUT, pack_inputs
from tasks.prepare.statistics import Statistics
from tasks.storage.atomic import write_error
from tasks.storage.publish import swap_in_folder

SAVED_MODEL = "saved-model"
FORMATS: tuple[str, ...] = (SAVED_MODEL,)
SIGNATURE = "serving_default"
BIKES_OUTPUT = "bikes"
COUNT_OUTPUT = "predicted_cnt"  # the column bikeflow predict writes
EXPORT_RECORD = "bikeflow-export.json"
MARKER_KIND = "exported model"
SUPPORTED_CALENDARS = ("us-federal",)


def input_columns(statistics: Statistics) -> list[tuple[str, str]]:
    """The signature's inputs in order: (column name, dtype name), one tensor per column."""
    raw = statistics.encoding.raw_names or statistics.feature_names
    columns = [(DATE_COLUMN, "string")]
    if statistics.stations is not None:
        columns.append((STATION_COLUMN, "int64"))
    columns += [(name, "float64" if name in FLOAT_COLUMNS else "int64") for name in raw]
    return columns


def unsupported_part(statistics: Statistics) -> str | None:
    """What of a bundle's preprocessing the graph cannot compute (None: it can all be exported)."""
    encoding = statistics.encoding
    raw = tuple(encoding.raw_names or statistics.feature_names)
    if raw not in (FEATURE_COLUMNS, HOUR_FEATURE_COLUMNS):
        return (
            f"its features {raw} are neither day.csv's {FEATURE_COLUMNS} nor hour.csv's "
            f"{HOUR_FEATURE_COLUMNS}"
        )
    if encoding.previous_day:
        return (
            "it reads the previous day's weather (features.previous_weather, the shared-weather "
            "zoo entry), which comes from other rows of the input, not from a row's own columns"
        )
    if encoding.holidays and encoding.holiday_calendar not in SUPPORTED_CALENDARS:
        calendar = encoding.holiday_calendar
        return f"its holiday calendar {calendar!r} is not one of {SUPPORTED_CALENDARS}"
    return None


def check_exportable(bundle: ModelBundle, label: str) -> None:
    """Raise ``ArtifactError`` naming the part of a bundle the SavedModel cannot reproduce."""
    reason = unsupported_part(bundle.statistics)
    if reason is not None:
        raise ArtifactError(
            f"model {label} cannot be exported as a SavedModel: {reason}. The export supports "
            "the seed recipe and the forecaster preset (ordinal or one-hot features, US federal "
            "holiday windows, a log, sqrt or no target transform, with or without stations)"
        )


def serving_module(bundle: ModelBundle) -> Any:
    """A ``tf.Module`` whose ``serve`` function computes bikes from the raw columns."""
    import tensorflow as tf

    from tasks.models import export_graph as graph

    statistics, model = bundle.statistics, bundle.model
    encoding = statistics.encoding
    columns = input_columns(statistics)
    holidays = graph.holiday_table(encoding)
    blocks = graph.input_blocks(model, STATION_INPUT)
    graph.check_width(blocks, len(statistics.feature_names))
    module = tf.Module(name="bikeflow")
    # The Keras model itself is not an attribute: tracking it would save Keras objects that
    # only Keras can revive. Its variables are tracked instead; the graph captures them.
    module.model_variables = [variable.value for variable in model.variables]
    table = graph.station_table(statistics) if statistics.stations is not None else None
    module.station_lookup = table
    specs = [tf.TensorSpec([None], getattr(tf, dtype), name=name) for name, dtype in columns]

    @tf.function(input_signature=specs)
    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        by_name = dict(zip((name for name, _ in columns), tensors, strict=True))
        days = graph.day_numbers(by_name[DATE_COLUMN])
        features = graph.normalised(
            graph.encoded_features(by_name, days, encoding, holidays), statistics
        )
        stations = None
        if table is not None:
            indices = table.lookup(by_name[STATION_COLUMN])
            stations = tf.reshape(tf.cast(indices, tf.int32), [-1, 1])
        output = model(pack_inputs(features, blocks, stations), training=False)
        bikes = graph.bikes_from_output(output, statistics)
        # tf.round rounds half to even, as numpy's rint in bikeflow predict does.
        count = tf.cast(tf.round(tf.maximum(bikes, 0.0)), tf.int64)
        return {BIKES_OUTPUT: bikes, COUNT_OUTPUT: count}

    module.serve = serve
    return module


def export_record(bundle: ModelBundle, label: str) -> dict[str, Any]:
    """What ``bikeflow-export.json`` says: the version, the signature's inputs and outputs."""
    import tensorflow as tf

    return {
        "made_by": "bikeflow",
        "version": label,
        "exported_at": datetime.now(UTC).isoformat(),
        "tensorflow": tf.__version__,
        "signature": SIGNATURE,
        "inputs": dict(input_columns(bundle.statistics)),
        "outputs": {BIKES_OUTPUT: "float64", COUNT_OUTPUT: "int64"},
        "target_transform": bundle.statistics.target_transform,
    }


def export_bundle(
    bundle: ModelBundle,
    output_dir: str | Path,
    label: str,
    export_format: str = SAVED_MODEL,
    field: str = "output_dir",
) -> Path:
    """Write the bundle as a SavedModel folder at ``output_dir``; return its resolved path.

    ``label`` names the model in the record and in errors (a registry version). Raises
    ``ArtifactError`` for a model whose preprocessing cannot be exported and
    ``PathRefusedError`` (naming ``field``) for a folder bikeflow may not replace.
    """
    if export_format not in FORMATS:
        raise ArtifactError(f"unknown export format {export_format!r}; choose one of {FORMATS}")
    check_exportable(bundle, label)
    destination = Path(check_output_folder(str(output_dir), field)).expanduser().resolve()
    import tensorflow as tf

    module = serving_module(bundle)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.staging"
    try:
        tf.saved_model.save(
            module, str(staging), signatures={SIGNATURE: module.serve.get_concrete_function()}
        )
        record = json.dumps(export_record(bundle, label), indent=2) + "\n"
        (staging / EXPORT_RECORD).write_text(record, encoding="utf-8")
        (staging / MARKER).write_bytes(marker_bytes(MARKER_KIND))
        swap_in_folder(staging, destination, field)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(destination, error, "the previous folder is unchanged") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination
