"""The report's figures as plotly.js figure JSON ({data, layout}); a page embeds it in an
escaped attribute and report.js draws it with the plotly.js that the plotly package ships.

Plain dicts, not `plotly.graph_objects`: building a validated Figure with a template
deep-copies the template and cost ~80 ms per figure, most of a page's render time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sgi.skills.runs import round_label

AXIS = dict(gridcolor="#e5e5e5", zerolinecolor="#ccc", automargin=True)
LAYOUT = dict(margin=dict(l=60, r=20, t=40, b=50), height=360, plot_bgcolor="white", paper_bgcolor="white",
              font=dict(family="system-ui, sans-serif", size=12), xaxis=AXIS, yaxis=AXIS)


class Figure:
    """The little of plotly's Figure API these plots use, building plain JSON."""

    def __init__(self, layout: dict[str, Any]):
        self.layout = {**LAYOUT, **{k: ({**AXIS, **_titled(v)} if k.startswith(("xaxis", "yaxis")) else v)
                                    for k, v in _titled(layout).items()}}
        self.data: list[dict[str, Any]] = []

    def add(self, kind: str, **trace: Any) -> None:
        self.data.append({"type": kind, **trace})

    def to_json(self) -> str:
        return json.dumps({"data": self.data, "layout": self.layout}, default=str)


def _titled(part: dict[str, Any]) -> dict[str, Any]:
    """plotly.js 3 takes titles only as {text: ...}; a plain string is ignored."""
    title = part.get("title")
    return {**part, "title": {"text": title}} if isinstance(title, str) else part


def _json(fig: Figure) -> str:
    return fig.to_json()


def accuracy_per_round(summary: list[dict[str, Any]]) -> str:
    fig = Figure(dict(title="Held-out accuracy after each round", yaxis=dict(range=[0, 1])))
    x = [round_label(r["round"]) for r in summary]
    for key, name in (("test_accuracy", "test"), ("weakest_accuracy", "weakest third of skills"),
                      ("general_accuracy", "general (forgetting)")):
        fig.add("scatter", x=x, y=[r[key] for r in summary], mode="lines+markers", name=name)
    return _json(fig)


def reward_curve(steps: list[dict[str, Any]], window: int = 5) -> str:
    """The RL round's mean reward per GRPO step and its running mean over `window` steps (a
    step's few prompts make single steps noisy), the correct share where a format term adds to
    the reward, and the KL from the model it started from on a second axis."""
    fig = Figure(dict(title="GRPO: mean reward per step", xaxis=dict(title="step"), yaxis=dict(title="reward"),
                      yaxis2=dict(title="KL", overlaying="y", side="right", showgrid=False)))
    x = [s["step"] for s in steps]
    rewards = [s["reward"] for s in steps]
    fig.add("scatter", x=x, y=rewards, mode="markers", name="reward", marker=dict(size=5, opacity=0.6))
    windows = [rewards[max(0, i - window + 1):i + 1] for i in range(len(rewards))]
    running = [sum(w) / len(w) for w in windows]
    fig.add("scatter", x=x, y=running, mode="lines", name=f"reward, mean of {window} steps")
    if any(s["correct"] is not None and abs(s["reward"] - s["correct"]) > 1e-9 for s in steps):
        fig.add("scatter", x=x, y=[s["correct"] for s in steps], mode="lines", name="correct share")
    fig.add("scatter", x=x, y=[s["kl"] for s in steps], mode="lines", name="KL", yaxis="y2", line=dict(dash="dot"))
    return _json(fig)


def stage_costs(ledger: list[dict[str, Any]], tokens: list[dict[str, Any]]) -> str:
    """Wall time per stage, and teacher tokens per stage on a second axis."""
    fig = Figure(dict(title="Wall time and teacher tokens per stage", barmode="group",
                                         yaxis=dict(title="seconds"),
                                         yaxis2=dict(title="teacher tokens", overlaying="y", side="right")))
    x = [f"{round_label(r['round'])} {r['stage']}" for r in ledger]
    fig.add("bar", x=x, y=[r["seconds"] or 0 for r in ledger], name="seconds")
    if tokens:
        spent = {(t["round"], t["stage"]): t["prompt_tokens"] + t["completion_tokens"] for t in tokens}
        fig.add("bar", x=x, y=[spent.get((r["round"], r["stage"]), 0) for r in ledger], name="teacher tokens",
                    yaxis="y2")
    return _json(fig)


def tradeoff(curve: list[dict[str, Any]], router: str) -> str:
    """Composed accuracy against the share escalated to System 2, one line per round (for
    the token router: the share of answer tokens the larger model chose)."""
    escalated = "tokens chosen by the larger model" if router == "token" else "escalated to System 2"
    fig = Figure(dict(title=f"System 1 + System 2, router {router} (test split)",
                                         xaxis=dict(title=escalated, range=[0, 1]),
                                         yaxis=dict(title="accuracy", range=[0, 1])))
    by_round: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for point in curve:
        if point["router"] == router:
            by_round[point["round"]].append(point)
    for round_, points in sorted(by_round.items()):
        fig.add("scatter", x=[p["escalation"] for p in points], y=[p["accuracy"] for p in points],
                        mode="lines", name=round_label(round_))
        chosen = [p for p in points if p["chosen"]]
        fig.add("scatter", x=[p["escalation"] for p in chosen], y=[p["accuracy"] for p in chosen], mode="markers",
                        marker=dict(size=11, symbol="star"), name=f"{round_label(round_)}: chosen on probe",
                        showlegend=False)
    return _json(fig)


def specialization(summary: list[dict[str, Any]]) -> str:
    """sgi's specialization curve: the share each router escalates at the probe-chosen
    threshold, round by round (it falls as the student learns what System 2 was doing)."""
    fig = Figure(dict(title="Escalated to System 2 at the target, by round (test split)",
                      yaxis=dict(title="escalated", range=[0, 1], tickformat=".0%")))
    by_router: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in summary:
        by_router[row["router"]].append(row)
    for router, rows in by_router.items():
        rows = sorted(rows, key=lambda r: r["round"])
        fig.add("scatter", x=[round_label(r["round"]) for r in rows], y=[r["escalation"] for r in rows],
                mode="lines+markers", name=router)
    return _json(fig)


def heatmap(rows: list[dict[str, Any]], value: str, title: str, skills: list[str]) -> str:
    """Skills (rows, in `skills` order) x rounds (columns) of `value`."""
    rounds = sorted({r["round"] for r in rows})
    cells = {(r["skill"], r["round"]): r[value] for r in rows}
    z = [[cells.get((skill, round_)) for round_ in rounds] for skill in skills]
    fig = Figure(dict(title=title, height=max(360, 22 * len(skills) + 120),
                                         yaxis=dict(autorange="reversed", automargin=True)))
    fig.add("heatmap", z=z, x=[round_label(r) for r in rounds], y=skills, zmin=0, zmax=1,
                    colorscale="Reds" if "missing" in value else "Greens", hoverongaps=False)
    return _json(fig)


def msp_bars(rows: list[dict[str, Any]], round_: int) -> str:
    fig = Figure(dict(title=f"Missing-Skill-Profile, {round_label(round_)}",
                                         xaxis=dict(title="difficult items naming the skill"),
                                         yaxis=dict(autorange="reversed", automargin=True),
                                         height=max(300, 26 * len(rows) + 120)))
    fig.add("bar", x=[r["missing"] for r in rows], y=[r["skill"] for r in rows], orientation="h",
                text=[f"{r['share']:.0%}" for r in rows], textposition="auto")
    return _json(fig)


def skill_deltas(rows: list[dict[str, Any]], a: str, b: str) -> str:
    fig = Figure(dict(title=f"Held-out accuracy per skill: {b} minus {a}",
                                         xaxis=dict(title="accuracy delta"),
                                         yaxis=dict(autorange="reversed", automargin=True),
                                         height=max(300, 22 * len(rows) + 120)))
    present = [r for r in rows if r["delta"] is not None]
    fig.add("bar", x=[r["delta"] for r in present], y=[r["skill"] for r in present], orientation="h",
                marker_color=["#2a7" if r["delta"] >= 0 else "#c33" for r in present])
    return _json(fig)
