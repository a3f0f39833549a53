"""The skill-gap report in a real browser: Debian's chromium driven by Playwright, against
`sgi report serve` watching a real reduced run while it writes, and the static pages from disk.

Each run is a real `sgi run` subprocess (SmolLM2 student, rules teacher, DuckDB). Screenshots
land in the test's output folder (printed; `pytest -s` shows where).
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from html import unescape
from pathlib import Path

import duckdb
import pytest

from sgi.reports.pages import CSP, skill_page
from support.browser import open_browser, require_browser
from support.ports import free_port
from support.runs import SGI, TINY_RUN, Run, as_sets, stage

pytestmark = pytest.mark.slow

RUN = [
    *TINY_RUN,
    "loop.rounds=1",
    "compose.max_items=10",
    "ray.enabled=false",
]
# What a model could answer; the report must show it as text and run none of it.
HOSTILE = '<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 2">'


def sgi_run(tmp: Path, name: str, *extra: str) -> Run:
    sets = as_sets([f"name={name}", f"runs_dir={tmp / 'runs'}", *RUN, *extra])
    return Run([*SGI, "run", "--progress", "json", *sets], tmp)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class Server:
    """`sgi report serve` as a subprocess on a free loopback port."""

    def __init__(self, run_dir: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([*SGI, "report", "serve", str(run_dir),
                                      "--port", str(self.port), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            try:
                urllib.request.urlopen(self.url + "/assets/report.css", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("sgi report serve did not answer in 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A STAT-Sel run watched live while it writes, and a uniform run to compare it with."""
    require_browser()
    tmp = tmp_path_factory.mktemp("report")
    # One after the other: two runs at once on 2 cores oversubscribe torch's threads (10x slower).
    other = sgi_run(tmp, "uniform", "loop.strategy=uniform", "compose.enabled=false")
    assert other.finish() == 0, "".join(other.other)[-3000:]
    live = sgi_run(tmp, "sel")
    server = None
    seen = []  # (status, whether the page said the run is live) of every page load while it works
    try:
        assert live.wait_for(stage(-1, "label", "done")), "".join(live.other)[-3000:]
        server = Server(tmp / "runs" / "sel", "--compare", str(tmp / "runs" / "uniform"))
        while live.proc.poll() is None:
            for page in ("/", "/skills.html", "/msp.html"):
                status, html = get(server.url + page)
                seen.append((status, "Live: the run is in progress" in html))
            time.sleep(3)
        assert live.finish() == 0, "".join(live.other)[-3000:]
        yield tmp, server, seen
    finally:
        if live.proc.poll() is None:
            live.kill_all()
        if server:
            server.stop()


def test_watching_a_run_neither_blocks_nor_corrupts_it(runs):
    tmp, server, seen = runs
    assert len(seen) >= 6 and all(status == 200 for status, _ in seen), seen
    assert any(live for _, live in seen)  # the pages said the run was in progress, from its snapshot
    db = duckdb.connect(str(tmp / "runs" / "sel" / "sgi.duckdb"), read_only=True)
    ledger = db.execute("SELECT round, stage, status FROM ledger").fetchall()
    db.close()
    assert all(status == "done" for *_, status in ledger) and (0, "evaluate", "done") in ledger
    status, html = get(server.url + "/")
    assert status == 200 and "Run stopped or finished" in html  # the stopped run is read from a fresh copy


def test_the_server_refuses_other_host_names_and_pages_that_are_not_there(runs):
    """DNS rebinding: a page of another site whose name now points at 127.0.0.1 sends its own
    Host header and is refused; a page number past any list is a 404, not a server error."""
    tmp, server, _ = runs
    port = server.port

    def status_with_host(path: str, host: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", path, headers={"Host": host})
            return connection.getresponse().status
        finally:
            connection.close()

    assert status_with_host("/", f"127.0.0.1:{port}") == 200 and status_with_host("/", f"localhost:{port}") == 200
    assert status_with_host("/", f"attacker.example:{port}") == 400
    assert status_with_host("/assets/report.css", "attacker.example") == 400
    skill, _ = _failing_skill(tmp / "runs" / "sel" / "sgi.duckdb")
    first = skill_page(skill, 0)
    assert get(server.url + "/" + first)[0] == 200
    for page in (99_999, 10**6, 10**30):
        assert get(server.url + "/" + first.removesuffix(".html") + f"-p{page}.html")[0] == 404


def _failing_skill(store: Path) -> tuple[str, list[tuple]]:
    """The skill with the most wrong greedy answers, and those answers' (round, item, diagnosis)."""
    db = duckdb.connect(str(store), read_only=True)
    try:
        skill = db.execute("""SELECT s.skill FROM attempts a JOIN item_skills s USING (item_id)
                              WHERE a.sample = 0 AND NOT a.correct GROUP BY s.skill
                              ORDER BY count(*) DESC, s.skill LIMIT 1""").fetchone()[0]
        rows = db.execute("""SELECT a.round, a.item_id, d.reason FROM attempts a JOIN item_skills s USING (item_id)
                             LEFT JOIN diagnoses d ON d.round = a.round AND d.item_id = a.item_id AND d.skill = s.skill
                             WHERE s.skill = ? AND a.sample = 0 AND NOT a.correct ORDER BY a.round, a.item_id""",
                          [skill]).fetchall()
    finally:
        db.close()
    return skill, rows


def test_click_through_overview_skill_page_and_compare(runs, tmp_path):
    tmp, server, _ = runs
    store = tmp / "runs" / "sel" / "sgi.duckdb"
    skill, failing = _failing_skill(store)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    playwright, browser = open_browser()
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(server.url + "/")
        assert page.locator("#run-name").inner_text() == "sel"
        page.wait_for_selector("#accuracy-plot .main-svg")  # plotly drew the figure
        assert page.locator("#rounds tbody tr").count() == 2  # the base student and round 0
        page.wait_for_selector("#tradeoff-1 .main-svg")  # System 1 + System 2 composed in each round
        assert page.locator("#compose tbody tr").count() == 2 * 4  # two rounds x four routers
        page.wait_for_selector("#specialization .main-svg")  # escalation at the target, round by round
        metrics = page.locator("#metrics tbody tr")  # RouteLLM's measures: four routers and two references a round
        assert metrics.count() == 2 * 6 and "oracle (reference)" in metrics.all_inner_texts()[5]
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        page.click("text=Skill map")
        page.wait_for_selector("#missing-map .main-svg")
        page.click("#skill-table th:has-text('missing rate')")  # sorts; the link is still there
        page.screenshot(path=str(shots / "skills.png"), full_page=True)
        page.click(f"#skill-table a:text-is('{skill}')")
        assert page.locator("#skill-name").inner_text() == skill
        shown = page.locator("#failing tbody tr.attempt")
        assert shown.count() == min(len(failing), 50)
        for i, (round_, item_id, reason) in enumerate(failing[:50]):
            row = shown.nth(i)
            assert row.get_attribute("data-item") == item_id and row.get_attribute("data-round") == str(round_)
            if reason:
                assert row.locator(".reason").inner_text() == reason
        page.screenshot(path=str(shots / "skill.png"), full_page=True)

        page.click("text=Compare: uniform")
        assert page.locator("#other-name").inner_text() == "uniform"
        page.wait_for_selector("#delta-plot .main-svg")
        assert page.locator("#deltas tbody tr").count() > 0
        page.screenshot(path=str(shots / "compare.png"), full_page=True)
        assert errors == []
    finally:
        browser.close()
        playwright.stop()
    print(f"screenshots in {shots}")


def test_model_text_is_shown_as_text_and_runs_nothing(runs, tmp_path):
    tmp, _, _ = runs
    run_dir = tmp_path / "hostile"
    shutil.copytree(tmp / "runs" / "sel", run_dir)
    skill, failing = _failing_skill(run_dir / "sgi.duckdb")
    round_, item_id, _ = failing[0]
    db = duckdb.connect(str(run_dir / "sgi.duckdb"))
    db.execute("UPDATE attempts SET output = ? WHERE round = ? AND item_id = ? AND sample = 0", [HOSTILE, round_, item_id])
    db.execute("UPDATE skills SET description = ? WHERE skill = ?", [HOSTILE, skill])
    db.close()
    server = Server(run_dir)
    playwright, browser = open_browser()
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/{skill_page(skill)}")
        assert page.locator("#skill-description").inner_text() == HOSTILE
        assert HOSTILE in page.locator(f"#failing tr[data-item='{item_id}'] .answer pre").inner_text()
        assert page.locator("#failing img").count() == 0 and page.locator("main script").count() == 0
        assert page.evaluate("window.__pwned") is None
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    finally:
        browser.close()
        playwright.stop()
        server.stop()


def test_the_static_report_opens_from_disk_with_no_request_leaving_the_machine(runs, tmp_path):
    tmp, _, _ = runs
    out = tmp_path / "site"
    result = subprocess.run([*SGI, "report", str(tmp / "runs" / "sel"),
                             "--compare", str(tmp / "runs" / "uniform"), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "index.html").is_file() and (out / "assets" / "plotly.min.js").is_file()
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in unescape((out / "index.html").read_text())
    skill, _ = _failing_skill(tmp / "runs" / "sel" / "sgi.duckdb")
    playwright, browser = open_browser()
    try:
        page = browser.new_page()
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto((out / "index.html").as_uri())
        page.wait_for_selector("#accuracy-plot .main-svg")
        page.click("text=Skill map")
        page.wait_for_selector("#missing-map .main-svg")
        page.click(f"#skill-table a:text-is('{skill}')")
        assert page.locator("#skill-name").inner_text() == skill
        page.click("text=Compare: uniform")
        page.wait_for_selector("#delta-plot .main-svg")
        assert requests and all(url.startswith("file://") for url in requests), [u for u in requests
                                                                                if not u.startswith("file://")]
    finally:
        browser.close()
        playwright.stop()


def test_serve_binds_loopback_and_refuses_what_is_not_a_run(tmp_path):
    result = subprocess.run([*SGI, "report", "serve", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no run store here" in result.stderr
    assert "Traceback" not in result.stderr
    help_text = subprocess.run([*SGI, "report", "--help"],
                               capture_output=True, text=True, timeout=120).stdout
    assert "127.0.0.1" in help_text
