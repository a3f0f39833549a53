"""What each report page shows, read from one consistent copy of a run's store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import yaml

from sgi.reports.source import Snapshot
from sgi.skills.runs import named_queries

PAGE_SIZE = 50
TOP_MISSING = 15  # bars per round on the MSP page
# A skill page's paginated lists: items labelled with it, failing attempts, what was trained on for it.
LISTINGS = ("labelled", "failing", "chosen")


# the store's queries (run, round_summary, compose_summary) and the report's own
QUERIES = {**named_queries("sgi.skills", "sql/queries.sql"), **named_queries("sgi.reports", "report.sql")}


@dataclass(frozen=True)
class Page:
    """One page of a paginated list: its rows, and how many there are in all."""

    rows: list[dict[str, Any]]
    total: int


def page_count(total: int) -> int:
    """Pages of PAGE_SIZE rows that `total` rows take (one, even when empty)."""
    return max(1, -(-total // PAGE_SIZE))


class RunData:
    """Queries over a snapshot; one connection per page render, closed after it."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.db: duckdb.DuckDBPyConnection = snapshot.connect()  # a cursor: close() keeps the connection

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RunData:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _rows(self, name: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.db.execute(QUERIES[name], params or [])
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def _one(self, name: str, params: list[Any] | None = None) -> tuple:
        return self.db.execute(QUERIES[name], params or []).fetchone()

    # --- overview ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Name, creation time and the config settings a reader wants first."""
        rows = self._rows("run")
        if not rows:
            return {"name": self.snapshot.run_dir.name, "created_at": None, "config": {}, "config_yaml": ""}
        config = yaml.safe_load(rows[0]["config_yaml"]) or {}
        return {"name": rows[0]["run"], "created_at": rows[0]["created_at"], "config": config,
                "config_yaml": rows[0]["config_yaml"]}

    def counts(self) -> dict[str, int]:
        names = ("items", "skills", "attempts", "diagnoses", "training examples", "written items")
        return dict(zip(names, self._one("totals")))

    def freshness(self) -> tuple[Any, str | None]:
        """(time of the newest ledger change, the stage running then, as 'round stage')."""
        return self._one("freshness")

    def round_summary(self) -> list[dict[str, Any]]:
        return self._rows("round_summary")

    def ledger(self) -> list[dict[str, Any]]:
        return self._rows("ledger_times")

    def teacher_tokens(self) -> list[dict[str, Any]]:
        return self._rows("teacher_tokens")

    def rl_steps(self) -> list[dict[str, Any]]:
        return self._rows("rl_steps")

    def compose_summary(self) -> list[dict[str, Any]]:
        return self._rows("compose_summary")

    def compose_metrics(self) -> list[dict[str, Any]]:
        return self._rows("compose_metrics")

    def compose_curve(self) -> list[dict[str, Any]]:
        return self._rows("test_curve")

    # --- skills -----------------------------------------------------------------------

    def profiled_rounds(self) -> list[int]:
        return [r["round"] for r in self._rows("profiled_rounds")]

    def missing_map(self) -> list[dict[str, Any]]:
        return self._rows("missing_map")

    def held_out_map(self) -> list[dict[str, Any]]:
        return self._rows("held_out_map")

    def skill_table(self) -> list[dict[str, Any]]:
        return self._rows("skill_table")

    def skills(self) -> list[str]:
        return [r["skill"] for r in self._rows("skill_names")]

    def msp(self) -> dict[int, list[dict[str, Any]]]:
        """Round -> its most missed skills (TOP_MISSING at most), for every profiled round."""
        rounds: dict[int, list[dict[str, Any]]] = {r: [] for r in self.profiled_rounds()}
        for row in self._rows("msp", [TOP_MISSING]):
            rounds[row["round"]].append(row)
        return rounds

    def skill(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("skill", [name])
        return rows[0] if rows else None

    def skill_rounds(self, name: str) -> list[dict[str, Any]]:
        return self._rows("skill_rounds", [name])

    def listing(self, part: str, name: str, page: int) -> Page:
        """Page `page` of one of a skill's LISTINGS (query `part`, counted by `part`_count)."""
        return Page(self._rows(part, [name, PAGE_SIZE, page * PAGE_SIZE]), self._one(f"{part}_count", [name])[0])

    def skill_pages(self, name: str) -> int:
        """Pages of a skill's page: as many as its longest listing needs (counts only)."""
        return page_count(max(self._one(f"{part}_count", [name])[0] for part in LISTINGS))

    def final_skill_evals(self) -> dict[str, dict[str, Any]]:
        return {r["skill"]: r for r in self._rows("final_skill_evals")}
