"""New rows since the champion's data, and per-feature drift: pure functions on arrays.

Drift is the population stability index (PSI) of each feature, new rows against the rows the
champion was trained on::

    PSI = sum over bins of (p_new - p_train) * ln(p_new / p_train)

The bins are the training rows' deciles (``PSI_BINS`` quantiles; a feature with at most
``PSI_BINS`` distinct training values, such as season or weekday, gets one bin per value
instead). An empty bin's share is raised to ``PSI_EPSILON`` (1e-4) so the logarithm stays
finite; with it, a bin that is empty on one side and holds all rows on the other contributes
about 9.2. The usual reading: below 0.1 no shift, 0.1-0.25 moderate, above 0.25 a shift.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

PSI_BINS = 10
PSI_EPSILON = 1e-4
PSI_SHIFTED = 0.25


def bin_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges from the reference rows: their quantiles, or midpoints between few values."""
    reference = np.asarray(reference, dtype=np.float64)
    values = np.unique(reference)
    if len(values) <= bins:
        return (values[:-1] + values[1:]) / 2
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def population_stability(
    reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON
) -> float:
    """The PSI of ``current`` against ``reference`` (one feature), bins from the reference."""
    reference = np.asarray(reference, dtype=np.float64).ravel()
    current = np.asarray(current, dtype=np.float64).ravel()
    if reference.size == 0 or current.size == 0:
        raise ValueError("PSI needs rows on both sides")
    edges = bin_edges(reference, bins)
    count = len(edges) + 1
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=count)
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=count)
    p_ref = np.maximum(expected / reference.size, epsilon)
    p_cur = np.maximum(actual / current.size, epsilon)
    return float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))


def feature_drift(
    reference: np.ndarray, current: np.ndarray, names: tuple[str, ...]
) -> dict[str, float]:
    """PSI of every feature column, new rows (``current``) against ``reference``."""
    return {
        name: population_stability(reference[:, i], current[:, i]) for i, name in enumerate(names)
    }


class NewDataReport(BaseModel):
    """What the champion was trained on, what is new since, and how different it looks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    champion: str | None
    champion_data_sha256: str | None = None
    champion_last_date: str | None = None
    champion_train_window: tuple[str, str] | None = None
    newest_data_sha256: str
    newest_last_date: str
    new_rows: int
    new_days: int
    first_new_date: str | None = None
    drift_measure: str = f"population stability index ({PSI_BINS} training-quantile bins)"
    psi: dict[str, float] = {}
    shifted: tuple[str, ...] = ()
    champion_new_rows_rmse: float | None = None
    champion_new_rows_mae: float | None = None
    champion_test_rmse: float | None = None
    champion_test_mae: float | None = None

    @property
    def summary(self) -> str:
        """One line for the CLI and the run summary."""
        if self.champion is None:
            return "new data: no champion yet, so every row is new to the registry"
        if self.new_rows == 0:
            return (
                f"new data: none since the champion's last date {self.champion_last_date} "
                f"(champion {self.champion})"
            )
        shifted = ", ".join(self.shifted) if self.shifted else "none"
        line = (
            f"new data: {self.new_rows} rows ({self.new_days} days, {self.first_new_date} .. "
            f"{self.newest_last_date}) since the champion's last date "
            f"{self.champion_last_date}; features with PSI > {PSI_SHIFTED}: {shifted}"
        )
        if self.champion_new_rows_rmse is not None and self.champion_test_rmse is not None:
            line += (
                f"; champion RMSE {self.champion_new_rows_rmse:,.0f} on the new rows vs "
                f"{self.champion_test_rmse:,.0f} on its own test window"
            )
        return line


def new_row_start(dates: np.ndarray, champion_last_date: str) -> int:
    """Index of the first row dated after the champion's last date (dates sorted)."""
    return int(np.searchsorted(dates, np.datetime64(champion_last_date, "D"), side="right"))


def drift_markdown(report: NewDataReport) -> str:
    """The report as the Prefect UI shows it."""
    lines = ["# New data and drift", "", report.summary + "."]
    if report.psi:
        lines += [
            "",
            f"Drift: {report.drift_measure}, new rows against the champion's training rows "
            f"{report.champion_train_window}; below 0.1 no shift, above {PSI_SHIFTED} a shift.",
            "",
            "| feature | PSI |",
            "|---|---|",
            *[f"| {name} | {value:.3f} |" for name, value in report.psi.items()],
        ]
    return "\n".join(lines)
