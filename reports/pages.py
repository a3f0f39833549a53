"""The report's pages, rendered from a run's snapshot with Jinja2 (autoescaped: model text is data).

Every page has a flat file name (`index.html`, `skill-<slug>-p2.html`, ...) and links by
relative name, so the same pages are written to a folder (`sgi report`) or served live
(`sgi report serve`) without a second set of routes.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from sgi.reports import plots
from sgi.reports.data import LISTINGS, PAGE_SIZE, RunData, page_count
from sgi.reports.source import snapshot
from sgi.skills import routing
from sgi.skills.runs import round_label
from sgi.skills.solvers import system2_label

ROUTERS = (*routing.ROUTERS, "token")


# Pages run their own two scripts and nothing else; no request leaves for elsewhere. Served
# pages send it as a header, written pages carry it as a meta tag.
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
MAX_PAGE_DIGITS = 6  # skill-X-p1234567.html is no page (and would overflow the query's OFFSET)


class NotFound(LookupError):
    """No such page in this report."""


def slug(name: str) -> str:
    """A file-name-safe, unique name for a skill or run (names come from a teacher: any text)."""
    readable = re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.")[:48] or "x"
    return f"{readable}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def skill_page(name: str, page: int = 0) -> str:
    return f"skill-{slug(name)}{f'-p{page + 1}' if page else ''}.html"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("sgi.reports", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, signed=signed, round_label=round_label, system2=system2_label)
    env.globals.update(skill_page=skill_page, slug=slug, PAGE_SIZE=PAGE_SIZE, CSP=CSP)
    return env


@cache
def assets() -> dict[str, bytes]:
    """Files every page loads, shipped beside the pages: no page fetches anything from the network."""
    from plotly.offline import get_plotlyjs

    folder = Path(__file__).parent / "assets"
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["plotly.min.js"] = get_plotlyjs().encode()
    return files


class Site:
    """The report of one run, plus runs to compare it with."""

    def __init__(self, run_dir: Path, compare: list[Path] = (), live: bool = False):
        self.run_dir = Path(run_dir)
        self.others = {slug(Path(p).resolve().name): Path(p) for p in compare}
        self.other_names = {key: path.resolve().name for key, path in sorted(self.others.items())}
        self.live = live  # served: pages of a running run reload themselves

    def render(self, name: str) -> str:
        """The HTML of page `name` (e.g. 'skills.html'); NotFound for any other name."""
        with RunData(snapshot(self.run_dir)) as data:
            if name in ("", "index.html"):
                return self._page("index.html", data, **self._overview(data))
            if name == "skills.html":
                return self._page("skills.html", data, **self._skill_map(data))
            if name == "msp.html":
                return self._page("msp.html", data, **self._msp(data))
            if match := re.fullmatch(rf"skill-(.+?)(?:-p(\d{{1,{MAX_PAGE_DIGITS}}}))?\.html", name):
                return self._page("skill.html", data, **self._skill(data, match[1], int(match[2] or 1) - 1))
            if match := re.fullmatch(r"compare-(.+)\.html", name):
                if match[1] not in self.others:
                    raise NotFound(name)
                with RunData(snapshot(self.others[match[1]])) as other:
                    return self._page("compare.html", data, **self._compare(data, other))
        raise NotFound(name)

    def pages(self) -> list[str]:
        """Every page name of the report as it is now (for writing it to a folder)."""
        names = ["index.html", "skills.html", "msp.html"] + [f"compare-{s}.html" for s in self.others]
        with RunData(snapshot(self.run_dir)) as data:
            for skill in data.skills():
                names += [skill_page(skill, page) for page in range(data.skill_pages(skill))]
        return names

    # --- page contents ----------------------------------------------------------------

    def _page(self, template: str, data: RunData, **context: Any) -> str:
        newest, running = data.freshness()
        shot = data.snapshot
        return _environment().get_template(template).render(
            run=data.run(), others=self.other_names, live=self.live and shot.live is not None,
            holder=shot.live, taken_at=shot.taken_at, newest=newest, running=running,
            age=(datetime.datetime.now() - shot.taken_at).total_seconds(), **context)

    def _overview(self, data: RunData) -> dict[str, Any]:
        summary = data.round_summary()
        ledger = data.ledger()
        tokens = data.teacher_tokens()
        curve = data.compose_curve()
        routers = [r for r in ROUTERS if any(p["router"] == r for p in curve)]
        compose = data.compose_summary()
        rl_steps = data.rl_steps()
        order = {name: i for i, name in enumerate((*ROUTERS, *routing.REFERENCES))}
        metrics = sorted((m for m in data.compose_metrics() if m["split"] == "test"),
                         key=lambda m: (m["round"], order.get(m["router"], len(order))))
        return {
            "counts": data.counts(), "summary": summary, "ledger": ledger, "tokens": tokens,
            "compose": compose, "metrics": metrics, "rl_steps": rl_steps,
            "reward_plot": plots.reward_curve(rl_steps) if rl_steps else None,
            "rl_quarters": _quarter_means([s["reward"] for s in rl_steps]),
            "accuracy_plot": plots.accuracy_per_round(summary) if summary else None,
            "cost_plot": plots.stage_costs(ledger, tokens) if ledger else None,
            "tradeoff_plots": [plots.tradeoff(curve, r) for r in routers],
            "specialization_plot": plots.specialization(compose) if compose else None,
        }

    def _skill_map(self, data: RunData) -> dict[str, Any]:
        table = data.skill_table()
        skills = [r["skill"] for r in table]
        missing, held_out = data.missing_map(), data.held_out_map()
        return {
            "table": table,
            "missing_plot": plots.heatmap(missing, "missing_rate", "Missing rate on the probe split", skills)
            if missing else None,
            "accuracy_plot": plots.heatmap(held_out, "accuracy", "Held-out test accuracy", skills)
            if held_out else None,
        }

    def _msp(self, data: RunData) -> dict[str, Any]:
        return {"rounds": [{"round": round_, "rows": rows, "plot": plots.msp_bars(rows, round_) if rows else None}
                           for round_, rows in data.msp().items()]}

    def _skill(self, data: RunData, wanted: str, page: int) -> dict[str, Any]:
        name = next((s for s in data.skills() if slug(s) == wanted), None)
        if name is None or page < 0:
            raise NotFound(wanted)
        lists = {part: data.listing(part, name, page) for part in LISTINGS}
        pages = page_count(max(p.total for p in lists.values()))  # the counts came with the lists
        if page >= pages:
            raise NotFound(wanted)
        return {"skill": data.skill(name), "per_round": data.skill_rounds(name), "page": page, "pages": pages,
                **lists}

    def _compare(self, data: RunData, other: RunData) -> dict[str, Any]:
        a, b = data.final_skill_evals(), other.final_skill_evals()
        rows = []
        for skill in sorted(set(a) | set(b)):
            acc_a, acc_b = a.get(skill, {}).get("accuracy"), b.get(skill, {}).get("accuracy")
            rows.append({"skill": skill, "a": acc_a, "b": acc_b,
                         "delta": acc_b - acc_a if acc_a is not None and acc_b is not None else None})
        rows.sort(key=lambda r: (r["delta"] is None, -(r["delta"] or 0), r["skill"]))
        name_a, name_b = data.run()["name"], other.run()["name"]
        return {"other": other.run(), "rows": rows, "summary_a": data.round_summary(),
                "summary_b": other.round_summary(), "delta_plot": plots.skill_deltas(rows, name_a, name_b)}


def _quarter_means(values: list[float]) -> tuple[float, float] | None:
    """Mean of the first and of the last quarter of `values` (GRPO's reward: single steps are noisy)."""
    if not values:
        return None
    quarter = max(1, len(values) // 4)
    return sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter


def write_site(site: Site, out: Path, progress: Any = None) -> int:
    """Write every page and asset of `site` into `out` (replaced page by page); returns the page count."""
    names = site.pages()  # reads the run first: a store that cannot be read leaves no folder behind
    out.mkdir(parents=True, exist_ok=True)
    (out / "assets").mkdir(exist_ok=True)
    for name, content in assets().items():
        (out / "assets" / name).write_bytes(content)
    for name in names:
        partial = out / f".{name}.tmp"
        partial.write_text(site.render(name))
        partial.replace(out / name)
        if progress:
            progress(name)
    return len(names)
