"""Error types a bikeflow user can meet; each says what is wrong and where."""

from __future__ import annotations

from dataclasses import dataclass


class BikeflowError(Exception):
    """Base class of every error that bikeflow reports to its user."""


class SourceError(BikeflowError):
    """The data source cannot be read: missing file, bad URL, failed download, bad zip."""


# Both refusals are ValueErrors too, so that a config validator can raise them: pydantic then
# reports invalid configuration, and the flow's own checks raise the very same message.
class SourceRefusedError(SourceError, ValueError):
    """A source outside the folders and hosts the deployment allows (BIKEFLOW_SOURCE_*)."""


class SourceUnavailableError(SourceError):
    """A download failed in a way worth another attempt: a connection error, a 5xx, a 429."""


class PathRefusedError(BikeflowError, ValueError):
    """A path the run would write is refused: outside the roots, or not bikeflow's to replace."""


class ArtifactError(BikeflowError):
    """A stored artifact is missing, altered or could not be written."""


class SplitError(BikeflowError):
    """The data cannot be split the way the configuration asks."""


class TrainingError(BikeflowError):
    """Training produced no usable model (for example every loss was NaN)."""


class TrainingTimeoutError(TrainingError):
    """A training ran past ``training.timeout_minutes``; its child process was killed."""


class RegistryLockTimeoutError(BikeflowError):
    """The registry's promotion lock stayed held past ``promotion.lock_timeout_minutes``."""


class NoChampionError(BikeflowError):
    """Prediction was asked for, but the model registry holds no champion yet."""


@dataclass(frozen=True)
class Failure:
    """One broken rule in one place of an input file."""

    row: int | None
    column: str | None
    rule: str
    value: str

    def describe(self) -> str:
        """Render as 'row 12, column hum, rule in [0, 1]: value 1.7'."""
        where = []
        if self.row is not None:
            # Data rows are 1-based and the header is line 1, so row N is line N + 1.
            where.append(f"row {self.row} (line {self.row + 1})")
        if self.column is not None:
            where.append(f"column {self.column}")
        place = ", ".join(where) if where else "whole file"
        return f"{place}: rule '{self.rule}' broken by value {self.value}"


class DataValidationError(BikeflowError):
    """An input table breaks one or more schema rules; every failure is listed."""

    # One positional message, like every other exception, so that Prefect can rebuild it
    # from a stored failure record; use ``from_failures`` to make one.
    def __init__(self, message: str, file: str = "", failures: tuple[Failure, ...] = ()) -> None:
        super().__init__(message)
        self.file = file
        self.failures = failures

    @classmethod
    def from_failures(
        cls, file: str, failures: list[Failure], shown: int = 10
    ) -> DataValidationError:
        """Build the error with a message that lists the first ``shown`` failures."""
        lines = [failure.describe() for failure in failures[:shown]]
        if len(failures) > shown:
            lines.append(f"... and {len(failures) - shown} more")
        message = f"{file} failed validation with {len(failures)} problem(s): " + "; ".join(lines)
        return cls(message, file=file, failures=tuple(failures))


class TripDataError(DataValidationError):
    """Trip history files break a rule: bad layout, timestamp, member type, duplicate ride."""

    subject = "the trip files"

    @classmethod
    def from_problems(cls, file: str, problems: list[str], shown: int = 20) -> TripDataError:
        """Build the error from one paragraph per problem (the first ``shown`` of them)."""
        paragraphs = problems[:shown]
        if len(problems) > shown:
            paragraphs = [*paragraphs, f"... and {len(problems) - shown} more problem(s)"]
        if len(problems) == 1:
            return cls(problems[0], file=file)
        head = f"{len(problems)} problems in {cls.subject}:"
        return cls("\n\n".join([head, *paragraphs]), file=file)


class WeatherDataError(TripDataError):
    """The weather table joined to trip counts breaks a rule: a column, a value, a missing day."""

    subject = "the weather table"
