"""A promotion decision as the Prefect UI shows it: both models' scores and the evidence."""

from __future__ import annotations

from tasks.promotion.registry import Decision
from tasks.storage.descriptors import Scores


def decision_markdown(decision: Decision) -> str:
    """The decision as the Prefect UI shows it."""
    rows: list[tuple[str, str, Scores]] = []
    if decision.challenger_scores is not None:
        rows.append(("challenger", decision.challenger, decision.challenger_scores))
    if decision.champion_before is not None and decision.champion_scores is not None:
        rows.append(("champion", decision.champion_before, decision.champion_scores))
    by = [f"By {decision.by}.", ""] if decision.by else []
    lines = [
        f"# Promotion: {decision.outcome}",
        "",
        decision.reason + ".",
        "",
        *by,
        *scores_markdown(rows, decision),
        *evidence_markdown(decision),
        f"Champion now: `{decision.champion_after}`. Record: `{decision.record}`",
    ]
    return "\n".join(lines)


def scores_markdown(rows: list[tuple[str, str, Scores]], decision: Decision) -> list[str]:
    """The scores table (none for a decision by hand on a version without recorded scores)."""
    if not rows:
        return []
    window = decision.test_window
    return [
        f"Both scored on the newest test window {window.first_date} .. {window.last_date} "
        f"({window.days} days):",
        "",
        "| role | version | RMSE | MAE | R² |",
        "|---|---|---|---|---|",
        *[
            f"| {role} | `{name}` | {s.rmse:.0f} | {s.mae:.0f} | {s.r2:.3f} |"
            for role, name, s in rows
        ],
        "",
    ]


def evidence_markdown(decision: Decision) -> list[str]:
    """The bootstrap evidence as markdown lines (none when there was no comparison)."""
    evidence, rule = decision.evidence, decision.promotion
    if evidence is None:
        return []
    level = f"{evidence.interval:.0%}"
    if rule.rule == "bootstrap":
        verdict = f"the bootstrap rule promotes at ≥ {rule.min_probability:g}"
    else:
        verdict = f"shown only: the point rule promotes on an RMSE gain > {rule.min_rmse_gain:g}"
    return [
        "## Evidence",
        "",
        f"Paired circular block bootstrap over the {evidence.days} test "
        f"days, {evidence.block_days}-day blocks, {evidence.resamples:,} resamples, seed "
        f"{evidence.seed}. Differences are champion minus challenger (positive: the challenger "
        "is better).",
        "",
        f"| quantity | estimate | {level} interval |",
        "|---|---|---|",
        f"| RMSE difference (bikes) | {evidence.rmse_difference:+.1f} | "
        f"{evidence.rmse_difference_low:+.1f} .. {evidence.rmse_difference_high:+.1f} |",
        f"| mean squared-error difference | {evidence.mse_difference:+.4g} | "
        f"{evidence.mse_difference_low:+.4g} .. {evidence.mse_difference_high:+.4g} |",
        "",
        f"P(challenger better) = **{evidence.probability:.3f}** ({verdict}).",
        "",
    ]
