"""What ``bikeflow aggregate`` needs: the trip files, how to count them, the file to write."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from schemas.config import Granularity
from schemas.paths import DataFolder, check_output_file
from schemas.source import TripsSource, parse_source
from schemas.sources import Source
from schemas.trips_config import TripsConfig, check_trips_fit


def _optional_file(value: str, info: ValidationInfo) -> str:
    # Empty: this format is not written. Given: refused, naming the path, if it exists and
    # bikeflow did not write it (schemas/ownership.py), before any work.
    return check_output_file(value, str(info.field_name)) if value.strip() else value


OptionalOutputFile = Annotated[str, AfterValidator(_optional_file)]


class AggregateConfig(BaseModel):
    """Trip files counted into the UCI layout, written as CSV or Parquet for inspection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trips: Source = Field(
        "data/trips",
        min_length=1,
        max_length=4096,
        description="The trip files: a local folder (every .csv, .csv.gz and .zip in it) or a "
        "glob pattern of them, either published layout, mixed.",
    )
    granularity: Granularity = Field(
        "day", description="Rows of the table: day (day.csv's layout) or hour (hour.csv's)."
    )
    counting: TripsConfig = Field(
        TripsConfig(), description="The weather, the time zone, the holidays, per station."
    )
    store_root: DataFolder = Field(
        "data/artifacts",
        min_length=1,
        max_length=4096,
        description="The artifact store: each file's counts are cached there as a run's are "
        "(a run on the same store reuses them).",
    )
    output_csv: OptionalOutputFile = Field(
        "",
        max_length=4096,
        description="CSV that receives the table; written whole or not at all. An existing "
        "file is replaced only if bikeflow wrote it.",
    )
    output_parquet: OptionalOutputFile = Field(
        "",
        max_length=4096,
        description="Parquet file that receives the table instead (needs pyarrow); the same "
        "rules as output_csv.",
    )

    @model_validator(mode="after")
    def _one_output_and_trips(self) -> AggregateConfig:
        field, output = self.output
        if bool(self.output_csv.strip()) == bool(self.output_parquet.strip()):
            raise ValueError("give one of output_csv and output_parquet (--output-csv FILE)")
        if field == "output_parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ValueError(
                "output_parquet: writing Parquet needs pyarrow, which is not installed "
                "(pip install pyarrow), or write a CSV with output_csv"
            )
        source = parse_source(self.trips)
        if not isinstance(source, TripsSource):
            raise ValueError(
                f"trips: {self.trips!r} is neither a folder nor a glob pattern of trip files"
            )
        if Path(output).expanduser().resolve().is_relative_to(source.folder):
            raise ValueError(
                f"{field}: {output!r} is under the trip files' folder {source.folder}, where "
                "a later run would read it as a trip file; write it elsewhere"
            )
        check_trips_fit(self.trips, self.counting, "counting")
        return self

    @property
    def output(self) -> tuple[str, str]:
        """The output field given and its path: (``output_csv`` or ``output_parquet``, path)."""
        if self.output_parquet.strip():
            return "output_parquet", self.output_parquet
        return "output_csv", self.output_csv
