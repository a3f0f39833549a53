"""How long each report page takes to render server-side on a large run, against naive reads.

    .venv/bin/python bench/bench_report.py                     # 100k attempts, 200 skills
    .venv/bin/python bench/bench_report.py --attempts 20000 --skills 50

Builds a store with the real schema (through `Store`) and fills it with SQL: `--attempts`
probe answers over 5 rounds, `--skills` skills, two per item, diagnoses for wrong answers,
held-out evals, training sets. Then, per page kind, times `Site.render` (snapshot lookup,
queries, figures, template: all the server does but HTTP) and a naive version of the same
page's data: every table it needs fetched whole into Python and joined there, as a report
written without the store's views would. Also times publishing a snapshot (the run's cost
per stage) and the report's own copy of a stopped run. Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from sgi.orchestrator.store import Store
from sgi.reports import source
from sgi.reports.pages import Site, skill_page

ROUNDS = 5
SAMPLES = 2


def make_store(run_dir: Path, attempts: int, skills: int) -> None:
    store = Store(run_dir / "sgi.duckdb")
    store.record_run("bench", "name: bench\nloop: {strategy: stat-sel, rounds: 5}\n")
    store.close()
    probe = attempts // (ROUNDS * SAMPLES)
    test = max(probe // 5, 10)
    db = duckdb.connect(str(run_dir / "sgi.duckdb"))
    fill = f"""
    INSERT INTO skills SELECT 'skill-' || lpad(i::VARCHAR, 3, '0'), 'Skill number ' || i, 'family-' || (i % 10), 'bench'
        FROM range({skills}) t(i);
    INSERT INTO items SELECT 'probe-' || i, 'probe', 'family-' || (i % 10), 'What is ' || i || ' + ' || (i * 7 % 13) || '?',
        (i + i * 7 % 13)::VARCHAR, [], '{{}}' FROM range({probe}) t(i);
    INSERT INTO items SELECT 'test-' || i, 'test', 'family-' || (i % 10), 'What is ' || i || ' * 3?', (i * 3)::VARCHAR,
        [], '{{}}' FROM range({test}) t(i);
    INSERT INTO items SELECT 'pool-' || i, 'pool', 'family-' || (i % 10), 'What is ' || i || ' - 1?', (i - 1)::VARCHAR,
        [], '{{}}' FROM range({probe}) t(i);
    INSERT INTO item_skills SELECT item_id, 'skill-' || lpad((hash(item_id) % {skills})::VARCHAR, 3, '0'), 1.0 FROM items;
    INSERT OR IGNORE INTO item_skills SELECT item_id, 'skill-' || lpad((hash(item_id || 'b') % {skills})::VARCHAR, 3, '0'), 0.8
        FROM items;
    INSERT INTO attempts SELECT r, 'probe-' || i, s, 'The answer is ' || (i + s), (i + s)::VARCHAR,
        hash(r, i, s) % 100 < 30 + 10 * r, 12, 0.8, 0.4 FROM range({ROUNDS}) a(r), range({probe}) b(i), range({SAMPLES}) c(s);
    INSERT INTO difficulty SELECT round, item_id, NOT correct, CASE WHEN correct THEN 'ok' ELSE 'wrong' END, 1
        FROM attempts WHERE sample = 0;
    INSERT OR IGNORE INTO diagnoses SELECT a.round, a.item_id, k.skill, 'did not apply ' || k.skill
        FROM attempts a JOIN item_skills k USING (item_id) WHERE a.sample = 0 AND NOT a.correct AND k.score = 1.0;
    INSERT INTO evals SELECT r, item_id, 'The answer is ' || answer, answer, hash(r, item_id) % 100 < 30 + 10 * r,
        12, 0.8, 0.4 FROM range(-1, {ROUNDS}) a(r), items WHERE split = 'test';
    INSERT INTO train_sets SELECT r, n, 'pool-' || (hash(r, n) % {probe}), 'skill-' || lpad((n % {skills})::VARCHAR, 3, '0'),
        'probe-' || (hash(n) % {probe}), 'pair', 'stat-sel' FROM range({ROUNDS}) a(r), range(1000) b(n);
    INSERT INTO ledger SELECT r, stage, 'done', now(), now(), 10.0, '' FROM range(-1, {ROUNDS}) a(r),
        (VALUES ('infer'), ('diagnose'), ('select'), ('train'), ('evaluate')) s(stage);
    """
    db.execute(fill)
    db.close()


def naive_pages(path: Path, skill: str) -> dict[str, Callable[[], object]]:
    """The same figures as the pages, from whole tables joined in Python."""

    def tables(*names: str) -> list[list[tuple]]:
        db = duckdb.connect(str(path), read_only=True)
        try:
            return [db.execute(f"SELECT * FROM {n}").fetchall() for n in names]
        finally:
            db.close()

    def labels_of(item_skills: list[tuple]) -> dict[str, list[str]]:
        labels = defaultdict(list)
        for item_id, name, _ in item_skills:
            labels[item_id].append(name)
        return labels

    def overview():
        items, evals = tables("items", "evals")
        split = {i[0]: i[1] for i in items}
        per_round = defaultdict(list)
        for e in evals:
            per_round[(e[0], split[e[1]])].append(e[4])
        return {k: sum(v) / len(v) for k, v in per_round.items()}

    def skill_map():
        item_skills, attempts, diagnoses = tables("item_skills", "attempts", "diagnoses")
        labels = labels_of(item_skills)
        tried, missing = defaultdict(int), defaultdict(int)
        for a in attempts:
            if a[2] == 0:
                for name in labels[a[1]]:
                    tried[(a[0], name)] += 1
        for d in diagnoses:
            missing[(d[0], d[2])] += 1
        return {k: missing[k] / n for k, n in tried.items()}

    def msp():
        (diagnoses,) = tables("diagnoses")
        counts = defaultdict(int)
        for d in diagnoses:
            counts[(d[0], d[2])] += 1
        return sorted(counts.items(), key=lambda kv: -kv[1])

    def skill_page_():
        items, item_skills, attempts, diagnoses, train = tables("items", "item_skills", "attempts", "diagnoses",
                                                                "train_sets")
        labelled = {i for i, name, _ in item_skills if name == skill}
        by_id = {i[0]: i for i in items}
        reasons = {(d[0], d[1]): d[3] for d in diagnoses if d[2] == skill}
        failing = sorted((a[0], a[1]) for a in attempts if a[2] == 0 and not a[5] and a[1] in labelled)
        rows = [(r, i, by_id[i][3], reasons.get((r, i))) for r, i in failing[:50]]
        chosen = [t for t in train if t[3] == skill][:50]
        return rows, chosen, len(labelled)

    return {"overview": overview, "skill map": skill_map, "MSP per round": msp, "skill page": skill_page_}


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--skills", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SGI_CACHE"] = str(Path(tmp) / "cache")
        run_dir = Path(tmp) / "bench"
        start = time.perf_counter()
        make_store(run_dir, args.attempts, args.skills)
        print(f"store with {args.attempts} attempts, {args.skills} skills built in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
        copy_s = median_seconds(lambda: source._copy_store(run_dir / "sgi.duckdb", Path(tmp) / "copy.duckdb"),
                                args.repeat)
        store = Store(run_dir / "sgi.duckdb")
        publish_s = median_seconds(store.publish_snapshot, args.repeat)
        store.close()
        site = Site(run_dir, [run_dir])
        site.render("index.html")  # the report's own copy, made once

        def first_page_of_a_copy():
            source._OPEN.clear()  # as when a run publishes a new copy: reopen, views computed again
            site.render("index.html")

        first_s = median_seconds(first_page_of_a_copy, args.repeat)
        db = duckdb.connect(str(source.snapshot(run_dir).path), read_only=True)
        skill = db.execute("""SELECT s.skill FROM attempts a JOIN item_skills s USING (item_id)
                              WHERE a.sample = 0 AND NOT a.correct GROUP BY s.skill ORDER BY count(*) DESC
                              LIMIT 1""").fetchone()[0]
        counts = db.execute("SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM diagnoses)").fetchone()
        db.close()
        pages = {"overview": "index.html", "skill map": "skills.html", "MSP per round": "msp.html",
                 "skill page": skill_page(skill), "skill page, last page": None, "compare": None}
        first = site.render(skill_page(skill))
        last = int(first.split("page 1 of ")[1].split("\n")[0]) - 1 if "page 1 of " in first else 0
        pages["skill page, last page"] = skill_page(skill, last)
        pages["compare"] = next(n for n in site.pages()[:4] if n.startswith("compare-"))
        naive = naive_pages(source.snapshot(run_dir).path, skill)

        table = Table(title=f"report pages, server-side render (median of {args.repeat}; "
                            f"{counts[0]} attempts, {counts[1]} diagnoses, {args.skills} skills)")
        for col in ("page", "sgi render (s)", "naive data only (s)", "naive / sgi", "HTML KiB"):
            table.add_column(col, justify="left" if col == "page" else "right")
        for label, name in pages.items():
            ours = median_seconds(lambda: site.render(name), args.repeat)
            base = naive.get(label.split(",")[0])
            theirs = median_seconds(base, args.repeat) if base else None
            table.add_row(label, f"{ours:.3f}", f"{theirs:.3f}" if theirs else "-",
                          f"{theirs / ours:.1f}x" if theirs else "-", f"{len(site.render(name)) / 1024:.0f}")
        Console().print(table)
        print(f"first page read from a new copy (open it, compute the store's views): {first_s:.3f} s; "
              f"publishing a copy (the run's cost per finished stage): {publish_s:.3f} s; "
              f"the report's own copy of a stopped run: {copy_s:.3f} s")


if __name__ == "__main__":
    main()
