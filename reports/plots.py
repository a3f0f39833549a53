"""The report's figures, as plotly JSON (a page embeds it in an escaped attribute; report.js draws it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go

LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=40, b=50), height=360)


def round_label(round_: int) -> str:
    return "warm-up" if round_ < 0 else f"round {round_}"


def _json(fig: go.Figure) -> str:
    return fig.to_json()


def accuracy_per_round(summary: list[dict[str, Any]]) -> str:
    fig = go.Figure(layout=LAYOUT | dict(title="Held-out accuracy after each round", yaxis=dict(range=[0, 1])))
    x = [round_label(r["round"]) for r in summary]
    for key, name in (("test_accuracy", "test"), ("weakest_accuracy", "weakest third of skills"),
                      ("general_accuracy", "general (forgetting)")):
        fig.add_scatter(x=x, y=[r[key] for r in summary], mode="lines+markers", name=name)
    return _json(fig)


def stage_costs(ledger: list[dict[str, Any]], tokens: list[dict[str, Any]]) -> str:
    """Wall time per stage, and teacher tokens per stage on a second axis."""
    fig = go.Figure(layout=LAYOUT | dict(title="Wall time and teacher tokens per stage", barmode="group",
                                         yaxis=dict(title="seconds"),
                                         yaxis2=dict(title="teacher tokens", overlaying="y", side="right")))
    x = [f"{round_label(r['round'])} {r['stage']}" for r in ledger]
    fig.add_bar(x=x, y=[r["seconds"] or 0 for r in ledger], name="seconds")
    if tokens:
        spent = {(t["round"], t["stage"]): t["prompt_tokens"] + t["completion_tokens"] for t in tokens}
        fig.add_bar(x=x, y=[spent.get((r["round"], r["stage"]), 0) for r in ledger], name="teacher tokens",
                    yaxis="y2")
    return _json(fig)


def tradeoff(curve: list[dict[str, Any]], router: str) -> str:
    """Composed accuracy against the share escalated to System 2, one line per round."""
    fig = go.Figure(layout=LAYOUT | dict(title=f"System 1 + System 2, router {router} (test split)",
                                         xaxis=dict(title="escalated to System 2", range=[0, 1]),
                                         yaxis=dict(title="accuracy", range=[0, 1])))
    by_round: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for point in curve:
        if point["router"] == router:
            by_round[point["round"]].append(point)
    for round_, points in sorted(by_round.items()):
        fig.add_scatter(x=[p["escalation"] for p in points], y=[p["accuracy"] for p in points],
                        mode="lines", name=round_label(round_))
        chosen = [p for p in points if p["chosen"]]
        fig.add_scatter(x=[p["escalation"] for p in chosen], y=[p["accuracy"] for p in chosen], mode="markers",
                        marker=dict(size=11, symbol="star"), name=f"{round_label(round_)}: chosen on probe",
                        showlegend=False)
    return _json(fig)


def heatmap(rows: list[dict[str, Any]], value: str, title: str, skills: list[str]) -> str:
    """Skills (rows, in `skills` order) x rounds (columns) of `value`."""
    rounds = sorted({r["round"] for r in rows})
    cells = {(r["skill"], r["round"]): r[value] for r in rows}
    z = [[cells.get((skill, round_)) for round_ in rounds] for skill in skills]
    fig = go.Figure(layout=LAYOUT | dict(title=title, height=max(360, 22 * len(skills) + 120),
                                         yaxis=dict(autorange="reversed", automargin=True)))
    fig.add_heatmap(z=z, x=[round_label(r) for r in rounds], y=skills, zmin=0, zmax=1,
                    colorscale="Reds" if "missing" in value else "Greens", hoverongaps=False)
    return _json(fig)


def msp_bars(rows: list[dict[str, Any]], round_: int) -> str:
    fig = go.Figure(layout=LAYOUT | dict(title=f"Missing-Skill-Profile, {round_label(round_)}",
                                         xaxis=dict(title="difficult items naming the skill"),
                                         yaxis=dict(autorange="reversed", automargin=True),
                                         height=max(300, 26 * len(rows) + 120)))
    fig.add_bar(x=[r["missing"] for r in rows], y=[r["skill"] for r in rows], orientation="h",
                text=[f"{r['share']:.0%}" for r in rows], textposition="auto")
    return _json(fig)


def skill_deltas(rows: list[dict[str, Any]], a: str, b: str) -> str:
    fig = go.Figure(layout=LAYOUT | dict(title=f"Held-out accuracy per skill: {b} minus {a}",
                                         xaxis=dict(title="accuracy delta"),
                                         yaxis=dict(autorange="reversed", automargin=True),
                                         height=max(300, 22 * len(rows) + 120)))
    present = [r for r in rows if r["delta"] is not None]
    fig.add_bar(x=[r["delta"] for r in present], y=[r["skill"] for r in present], orientation="h",
                marker_color=["#2a7" if r["delta"] >= 0 else "#c33" for r in present])
    return _json(fig)
