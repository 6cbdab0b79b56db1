"""The model card in the common layout: intended use, data, evaluation, limitations, lineage.

The training step writes the model's own details (architecture, members, epochs); this module
puts them under the sections a reader of any model card expects, from the run's metrics.json.
"""

from __future__ import annotations

from typing import Any

# Hurricane Sandy closed Washington's Capital Bikeshare on this day: a day no model can learn.
STORM_DAY = "2012-10-29"


def _in_range(day: str, first: str, last: str) -> bool:
    return first <= day <= last


def _training_details(training_card: str) -> list[str]:
    """The training step's card, its title made a section of this one."""
    lines = training_card.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return ["## Model details", *lines]


def lineage_lines(lineage: dict[str, Any] | None) -> list[str]:
    """The lineage section: code, flow run, libraries, data digest, date."""
    if not lineage:
        return ["## Lineage", "", "Not recorded (a model registered before lineage was kept)."]
    git = lineage.get("git")
    code = "not run from a git checkout"
    if git:
        code = f"git commit `{git['commit']}`" + (
            " (with uncommitted changes)" if git["dirty"] else ""
        )
    run = lineage.get("flow_run")
    if run:
        where = f"deployment `{run['deployment']}`" if run.get("deployment") else "no deployment"
        named = f"[{run['name']}]({run['ui_url']})" if run.get("ui_url") else f"`{run['name']}`"
        flow = f"flow run {named} (id `{run['id']}`), {where}"
    else:
        flow = "not run inside a Prefect flow run"
    libraries = ", ".join(
        f"{name} {version or '-'}" for name, version in lineage["libraries"].items()
    )
    return [
        "## Lineage",
        "",
        f"- Package: bikeflow {lineage.get('package_version') or '(not installed)'}; {code}",
        f"- Prefect: {flow}",
        f"- Libraries: {libraries}",
        f"- Source sha256: `{lineage['source_sha256']}`",
        f"- Made: {lineage['created_at']}",
    ]


def limitations(metrics: dict[str, Any]) -> list[str]:
    """What the model cannot be trusted for, given its data."""
    first, last = metrics.get("data_first_date", ""), metrics.get("data_last_date", "")
    notes = [
        f"- Learned from {first} .. {last} of one bike-sharing system: a few years at most, "
        "which cannot show long-term trends; another city's system is out of scope.",
        "- Weather enters as the day's recorded values: a forecast's errors add to the model's.",
    ]
    if first and last and _in_range(STORM_DAY, first, last):
        notes.append(
            f"- The data hold {STORM_DAY} (Hurricane Sandy, the system closed): an outlier "
            "day the model does not predict, which weighs on any window containing it."
        )
    return ["## Limitations", "", *notes]


def full_model_card(training_card: str, metrics: dict[str, Any]) -> str:
    """The published model card (markdown), from the training step's card and the metrics."""
    test = metrics["split"]["test"]
    baselines = [
        f"| {name} | {s['rmse']:.0f} | {s['mae']:.0f} | {s['r2']:.3f} |"
        for name, s in metrics["baselines"].items()
    ]
    lines = [
        "# Model card",
        "",
        "## Intended use",
        "",
        "Forecast daily (or hourly) bike rentals of the system it was trained on, from the "
        "calendar and the weather, for planning (rebalancing, staffing). Not for other "
        "systems, nor for decisions about individual riders.",
        "",
        "## Training data",
        "",
        f"- Source: `{metrics['source']}` (sha256 `{metrics['data_sha256']}`)",
        f"- Date range: {metrics.get('data_first_date', '?')} .. "
        f"{metrics.get('data_last_date', '?')}, {metrics['rows']:,} rows",
        "",
        "## Evaluation",
        "",
        f"Test window {test['first_date']} .. {test['last_date']} ({test['days']} days), "
        "scored once, in bikes:",
        "",
        "| predictor | RMSE | MAE | R² |",
        "|---|---|---|---|",
        f"| model | {metrics['test_rmse']:.0f} | {metrics['test_mae']:.0f} | "
        f"{metrics['test_r2']:.3f} |",
        *baselines,
        "",
        *limitations(metrics),
        "",
        *lineage_lines(metrics.get("lineage")),
        "",
        *_training_details(training_card),
    ]
    return "\n".join(lines) + "\n"
