"""Report pages and snapshots on real DuckDB stores written through `Store` (no model needed)."""

from __future__ import annotations

from markupsafe import escape
import re

import pytest

from sgi.orchestrator.rundir import RunLock
from sgi.orchestrator.store import ScoredAttempt, Store
from sgi.reports import source
from sgi.reports.pages import NotFound, Site, skill_page, slug, write_site
from sgi.skills.records import Diagnosis, Generation, Item, Label, Skill
from sgi.skills.runs import SNAPSHOT_FILE, StoreError

HOSTILE_SKILL = 'carry</script><script>alert("x")</script>'
HOSTILE_TEXT = '<img src=x onerror="alert(1)">'


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SGI_CACHE", str(tmp_path / "cache"))


def attempt(item_id: str, text: str, correct: bool) -> ScoredAttempt:
    return ScoredAttempt(Generation(item_id, 0, text, 3, 0.9, 0.5), text, correct)


def make_run(run_dir, failing: int = 3, accuracy: float = 0.5) -> Store:
    """A run with two skills, `failing` wrong probe answers on one of them, diagnosed, and evals."""
    store = Store(run_dir / "sgi.duckdb")
    store.record_run(run_dir.name, f"name: {run_dir.name}\nloop: {{strategy: stat-sel, rounds: 1}}\n")
    probe = [Item(f"p{i}", f"{i} + 9 = ?", str(i + 9), "probe", "add") for i in range(failing)]
    test = [Item(f"t{i}", f"{i} + 1 = ?", str(i + 1), "test", "add") for i in range(4)]
    store.add_items(probe + test)
    store.add_skills([Skill(HOSTILE_SKILL, HOSTILE_TEXT, "add"), Skill("plain", "adds numbers", "add")], "rules")
    store.add_labels([Label(i.item_id, HOSTILE_SKILL) for i in probe + test] + [Label("t0", "plain")])
    store.start_stage(0, "infer")
    store.add_attempts(0, [attempt(i.item_id, HOSTILE_TEXT, False) for i in probe])
    store.add_diagnoses(0, [Diagnosis(i.item_id, (HOSTILE_SKILL,), f"forgot the carry {HOSTILE_TEXT}") for i in probe])
    store.finish_stage(0, "infer")
    store.add_evals(0, [attempt(t.item_id, t.answer, n < accuracy * 4) for n, t in enumerate(test)])
    return store


def test_every_page_renders_and_escapes_model_text(tmp_path):
    make_run(tmp_path / "a").close()
    make_run(tmp_path / "b", accuracy=1.0).close()
    site = Site(tmp_path / "a", [tmp_path / "b"])
    pages = site.pages()
    assert {"index.html", "skills.html", "msp.html", f"compare-{slug('b')}.html", skill_page(HOSTILE_SKILL)} <= set(pages)
    for name in pages:
        text = site.render(name)
        assert "<script>alert" not in text and "<img src=x" not in text, name
        scripts = re.findall(r"<script[^>]*>", text)
        assert scripts == ['<script src="assets/plotly.min.js">', '<script src="assets/report.js" defer>'], name
    page = site.render(skill_page(HOSTILE_SKILL))
    assert str(escape(HOSTILE_TEXT)) in page and str(escape(f"forgot the carry {HOSTILE_TEXT}")) in page
    assert page.count('class="attempt"') == 3
    assert "+50.0%" in site.render(f"compare-{slug('b')}.html")  # b's final test accuracy is 100% against 50%


def test_skill_pages_are_paginated(tmp_path):
    make_run(tmp_path / "a", failing=120).close()
    site = Site(tmp_path / "a")
    names = [skill_page(HOSTILE_SKILL, p) for p in range(3)]
    assert set(names) <= set(site.pages())
    counts = [site.render(n).count('class="attempt"') for n in names]
    assert counts == [50, 50, 20]
    assert 'rel="next"' in site.render(names[0]) and 'rel="next"' not in site.render(names[2])
    for missing in (skill_page(HOSTILE_SKILL, 3), "skill-nope-123456.html", "../sgi.duckdb", "admin.html"):
        with pytest.raises(NotFound):
            site.render(missing)


def test_a_live_run_is_read_from_the_snapshot_it_publishes(tmp_path):
    run_dir = tmp_path / "live"
    with RunLock(run_dir):
        store = Store(run_dir / "sgi.duckdb")
        with pytest.raises(StoreError, match="has not published a snapshot yet"):
            source.snapshot(run_dir)
        store.start_stage(-1, "task")
        store.finish_stage(-1, "task")  # every finished stage publishes one
        shot = source.snapshot(run_dir)
        assert shot.path == run_dir / SNAPSHOT_FILE and shot.live and "pid" in shot.live
        text = Site(run_dir).render("index.html")
        assert "Live: the run is in progress" in text
        store.start_stage(0, "infer")  # not published until a stage finishes (or SNAPSHOT_EVERY_S passes)
        with shot.connect() as db:
            assert db.execute("SELECT count(*) FROM ledger").fetchone()[0] == 1
        store.close()


def test_a_stopped_run_is_copied_once_and_again_after_it_changes(tmp_path):
    run_dir = tmp_path / "stopped"
    store = make_run(run_dir)
    store.close()
    first = source.snapshot(run_dir)
    assert first.live is None and first.path.parent == tmp_path / "cache" / "report-snapshots"
    assert source.snapshot(run_dir).taken_at == first.taken_at  # unchanged store: the same copy
    store = Store(run_dir / "sgi.duckdb")
    store.start_stage(0, "difficulty")
    store.close()
    second = source.snapshot(run_dir)
    with second.connect() as db:
        assert db.execute("SELECT count(*) FROM ledger WHERE stage = 'difficulty'").fetchone()[0] == 1


def test_the_static_site_is_written_whole(tmp_path):
    make_run(tmp_path / "a").close()
    out = tmp_path / "site"
    count = write_site(Site(tmp_path / "a"), out)
    written = sorted(p.name for p in out.glob("*.html"))
    assert count == len(written) and "index.html" in written
    assert not list(out.glob(".*.tmp"))
    assert {"plotly.min.js", "report.js", "report.css"} <= {p.name for p in (out / "assets").iterdir()}
    with pytest.raises(StoreError, match="no run store"):
        Site(tmp_path / "nowhere").render("index.html")
