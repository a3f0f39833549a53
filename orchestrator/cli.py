"""The `sgi` command line.

    sgi run                           # embedded default: warm-up, then 2 STAT-Sel training rounds
    sgi run examples/arith.yaml --set loop.strategy=uniform --set name=uniform
    sgi compare runs/default runs/uniform
    sgi profile                       # embedded default: where is the student weak?
    sgi profile examples/arith.yaml   # the same, from a config file
    sgi profile --set student.batch_size=8 --set name=small
    sgi status runs/default           # what a run holds: skills, rounds, stage status
    sgi resume runs/default           # continue a killed or stopped run from where it stopped
    sgi run --force-from 1:train      # redo round 1's training and everything after it
    sgi compose runs/default --round 1 --set compose.system2=oracle   # System 1 + System 2, routed
    sgi report runs/default --compare runs/uniform    # the skill-gap report as HTML files
    sgi report serve runs/default --port 8765         # the same pages, live, on 127.0.0.1
    sgi submit my.yaml --address http://HEAD:8265 --runs-dir /shared/runs   # the run as a Ray job
    sgi jobs; sgi logs JOB --follow; sgi stop JOB     # the cluster's sgi jobs

Ctrl-C (or SIGTERM) stops after the current batch, which is saved; a second Ctrl-C aborts.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import duckdb
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from sgi.orchestrator import registry
from sgi.orchestrator.config import ConfigError, load_config
from sgi.orchestrator.jobs import DEFAULT_ADDRESS, JobError
from sgi.orchestrator.progress import Reporter, StopRequested
from sgi.orchestrator.rows import ComposeSummary, MetricsRow, ProfileRow, RoundSummary, TeacherUsage
from sgi.orchestrator.rundir import ensure_free, parse_stage
from sgi.orchestrator.store import Store
from sgi.orchestrator.terminal import as_markup, as_text
from sgi.skills.interfaces import TeacherOutputError, TeacherRefused
from sgi.skills.routing import REFERENCES, ROUTERS
from sgi.skills.runs import STORE_FILE, StoreError, damaged, leftover_log, round_cell
from sgi.skills.tasks.files import TaskDataError
from sgi.workers.actors import EngineDied
from sgi.workers.models import ModelNotFoundError

app = typer.Typer(
    help="Skill-targeted adaptive training: find the skills a student model is missing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, tests) would otherwise wrap tables at 80 columns. No emoji codes:
# tables quote data (skill names, stage details), whose ":name:" must stay as written.
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=120, emoji=False)

ConfigArg = Annotated[Optional[Path], typer.Argument(help="YAML config; omit for the embedded default.")]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a config key, e.g. --set student.batch_size=8.")]
QuietOpt = Annotated[bool, typer.Option(help="No progress bars (same as --progress quiet).")]
ProgressOpt = Annotated[str, typer.Option(help="bars, json (one JSON line per batch and stage, on stderr) or quiet.")]
ForceOpt = Annotated[Optional[str], typer.Option(
    "--force-from", help="Redo from this stage on purpose: STAGE (round 0), ROUND:STAGE or setup:STAGE.")]


@app.command()
def run(config: ConfigArg = None, set_: SetOpt = [], quiet: QuietOpt = False, progress: ProgressOpt = "bars",
        force_from: ForceOpt = None):
    """The whole STAT loop: profile the student, build each round's training set with the
    configured strategy, train from the current checkpoint, evaluate per skill. On an
    existing run directory it continues where the run stopped."""
    cfg = load_config(config, set_)
    _run_loop(cfg, quiet, progress, force_from)
    if not quiet:
        _next_steps(cfg, config, set_)


def _next_steps(cfg: Any, config: Path | None, sets: list[str]) -> None:
    """What a newcomer looks at next: the report of this run, and the plain-SFT baseline on the
    same settings and budget beside it (the only way to tell whether the targeting helped)."""
    report = f"sgi report {shlex.quote(str(cfg.run_dir))}"
    console.print("\nnext:", highlight=False)
    console.print(f"  {as_markup(report)}    # the skill-gap report (HTML, opens from disk)", highlight=False)
    if cfg.loop.strategy != "uniform":
        baseline = cfg.run_dir.with_name(f"{cfg.name}-uniform")
        args = [*([str(config)] if config else []),
                *[a for s in [*(s for s in sets if not s.startswith(("name=", "loop.strategy="))),
                              "loop.strategy=uniform", f"name={baseline.name}"] for a in ("--set", s)]]
        command = (f"sgi run {' '.join(shlex.quote(a) for a in args)} && "
                   f"sgi compare {shlex.quote(str(baseline))} {shlex.quote(str(cfg.run_dir))}")
        console.print(f"  {as_markup(command)}\n    # plain SFT on the same budget, then both side by side",
                      highlight=False)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. runs/default.")],
    set_: SetOpt = [], quiet: QuietOpt = False, progress: ProgressOpt = "bars", force_from: ForceOpt = None,
):
    """Continue a killed or stopped run with the config stored in it: finished stages are
    skipped, an interrupted one continues from its last committed batch or training state."""
    ensure_free(run_dir, "resume it")
    store = Store(run_dir / STORE_FILE, read_only=True)
    try:
        info = store.run_info()
    finally:
        store.close()
    if info is None:
        raise StoreError(f"{run_dir}: the store holds no run config; start it with `sgi run`")
    _run_loop(load_config(None, set_, stored=info[1], placed=_placed(run_dir)), quiet, progress, force_from)


def _placed(run_dir: Path) -> dict[str, Any]:
    """A run directory as the config's name and runs folder, set as they are (never parsed)."""
    return {"runs_dir": run_dir.parent, "name": run_dir.name}


def _run_loop(cfg: Any, quiet: bool, progress: str, force_from: str | None) -> None:
    from sgi.orchestrator import loop

    reporter = _reporter(quiet, progress)
    rl = f", then GRPO: {cfg.loop.rl.steps} steps" if cfg.loop.rl.enabled else ""
    console.print(f"run [bold]{as_markup(cfg.name)}[/bold] in {as_markup(cfg.run_dir)}  (strategy {cfg.loop.strategy}, "
                  f"{cfg.loop.rounds} rounds, {cfg.train.steps} steps x {cfg.train.batch_size} per round{rl})")
    with stop_on_signals(reporter, cfg.run_dir):
        rows = loop.run(cfg, reporter, parse_stage(force_from) if force_from else None)
    console.print(summary_table(rows.summary, title=f"per round ({as_markup(cfg.run_dir / STORE_FILE)})"))
    if rows.composed.summary:
        console.print(compose_table(rows.composed.summary, title="System 1 + System 2 on the test split"))
        console.print(metrics_table(rows.composed.metrics))


def _reporter(quiet: bool, progress: str) -> Reporter:
    if progress not in ("bars", "json", "quiet"):
        raise ConfigError(f"--progress {progress!r}: expected bars, json or quiet")
    return Reporter(mode="quiet" if quiet else progress)  # type: ignore[arg-type]


class stop_on_signals:
    """SIGINT/SIGTERM stop after the current batch (see Reporter.catch_signals); handlers restored on exit."""

    def __init__(self, reporter: Reporter, run_dir: Path):
        self.reporter = reporter
        self.run_dir = run_dir

    def __enter__(self) -> stop_on_signals:
        self.previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.reporter.catch_signals()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if exc_type is StopRequested:
            Console(stderr=True).print(f"[yellow]stopped:[/yellow] {as_markup(exc)}; finished work is saved. "
                                       f"Continue with `sgi resume {self.run_dir}`.", highlight=False, soft_wrap=True)
            raise SystemExit(128 + (self.reporter.signum or signal.SIGINT))


@app.command()
def compose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. runs/default.")],
    round_: Annotated[Optional[list[int]], typer.Option(
        "--round", help="Round(s) to compose; -1 = the warm-up student. Default: every trained round.")] = None,
    set_: SetOpt = [], quiet: QuietOpt = False, progress: ProgressOpt = "bars",
):
    """Compose each round's student (System 1) with a System-2 solver on the test split:
    per-item routes with reasons and latency, and accuracy against escalation rate, in the
    store. `--set compose.*` changes the solver, routers or target for this composition."""
    from sgi.orchestrator import loop

    ensure_free(run_dir, "compose it")
    store = Store(run_dir / STORE_FILE, read_only=True)
    try:
        info = store.run_info()
        trained = sorted(r.round for r in store.ledger() if r.stage == "evaluate" and r.status == "done")
    finally:
        store.close()
    if info is None:
        raise StoreError(f"{run_dir}: the store holds no run config; start it with `sgi run`")
    rounds = round_ or trained
    missing = [r for r in rounds if r not in trained]
    if missing or not rounds:
        raise StoreError(f"{run_dir}: round(s) {missing or rounds} not evaluated yet (evaluated: {trained or 'none'}); "
                         f"finish them with `sgi resume {run_dir}`")
    cfg = load_config(None, set_, stored=info[1], placed=_placed(run_dir))
    reporter = _reporter(quiet, progress)
    with stop_on_signals(reporter, cfg.run_dir):
        composed = loop.compose(cfg, reporter, rounds)
    title = f"System 1 + System 2 on the test split ({as_markup(run_dir / STORE_FILE)})"
    console.print(compose_table(composed.summary, title=title))
    console.print(metrics_table(composed.metrics))


def compose_table(rows: list[ComposeSummary], title: str) -> Table:
    """Per round and router: each system alone, composed, escalation and latency (compose_summary)."""
    from sgi.skills.solvers import system2_label

    table = Table(title=title)
    for col in ("round", "router", "System 2", "items", "System 1 acc", "System 2 acc", "composed acc", "escalated",
                "ms/item S1", "ms/item S2", "ms/item composed"):
        table.add_column(col, justify="left" if col in ("router", "System 2") else "right",
                         no_wrap=col in ("router", "System 2"))
    for r in rows:
        table.add_row(round_cell(r.round), r.router, system2_label(r.system2), str(r.items),
                      _pct(r.system1_accuracy), _pct(r.system2_accuracy), _pct(r.composed_accuracy),
                      f"{r.escalation:.0%}", f"{1000 * r.system1_seconds:.0f}", f"{1000 * r.system2_seconds:.0f}",
                      f"{1000 * r.composed_seconds:.0f}")
    return table


def metrics_table(rows: list[MetricsRow], split: str = "test") -> Table:
    """RouteLLM's measures per round and router on `split`, the random and oracle references last."""
    table = Table(title=f"Routers as RouteLLM measures them ({split} split): the gap between System 1 and "
                        f"System 2 recovered")
    for col in ("round", "router", "APGR", "CPT(50%)", "CPT(80%)", "CPT(95%)"):
        table.add_column(col, justify="left" if col == "router" else "right", no_wrap=col == "router")
    order = {name: i for i, name in enumerate((*ROUTERS, "token", *REFERENCES))}
    for r in sorted((r for r in rows if r.split == split), key=lambda r: (r.round, order.get(r.router, 99))):
        label = {"random": "random (reference)", "oracle": "oracle (reference)"}.get(r.router, r.router)
        table.add_row(round_cell(r.round), label, _pct(r.apgr), *(_share(x) for x in (r.cpt50, r.cpt80, r.cpt95)))
    return table


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="A run directory.")],
    run_b: Annotated[Path, typer.Argument(help="Another run directory.")],
    split: str = typer.Option("test", help="Held-out split to compare: test or general."),
):
    """Per-skill held-out accuracy of two runs' final rounds, side by side."""
    finals = [_final_skill_evals(d, split) for d in (run_a, run_b)]
    table = Table(title=f"{split} accuracy per skill, final rounds")
    for col in ("skill", f"{run_a.name} (round {finals[0][0]})", f"{run_b.name} (round {finals[1][0]})", "delta"):
        table.add_column(col, justify="left" if col == "skill" else "right", no_wrap=(col == "skill"))
    a, b = finals[0][1], finals[1][1]
    for skill in sorted(set(a) | set(b)):
        delta = b[skill] - a[skill] if skill in a and skill in b else None
        table.add_row(as_text(skill), _pct(a.get(skill)), _pct(b.get(skill)),
                      f"{delta:+.3f}" if delta is not None else "-")
    console.print(table)


def _final_skill_evals(run_dir: Path, split: str) -> tuple[int, dict[str, float]]:
    store = _reader(run_dir)
    try:
        rounds = [r.round for r in store.round_summary()]
        if not rounds:
            raise StoreError(f"{run_dir}: no evaluated round yet (run `sgi run` first)")
        return rounds[-1], {e.skill: e.accuracy for e in store.skill_evals(rounds[-1], split)}
    finally:
        store.close()


def _pct(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def summary_table(rows: list[RoundSummary], title: str) -> Table:
    table = Table(title=title)
    for col in ("round", "test acc", "weakest third", "general", "train examples", "stage seconds"):
        table.add_column(col, justify="right")
    for round_, test, weakest, general, examples, seconds in rows:
        table.add_row(round_cell(round_), _pct(test), _pct(weakest), _pct(general),
                      str(examples), f"{seconds:.0f}" if seconds is not None else "-")
    return table


@app.command()
def report(
    target: Annotated[str, typer.Argument(help="A run directory, or `serve` followed by one.", metavar="[serve] RUN")],
    run_dir: Annotated[Optional[Path], typer.Argument(help="With `serve`: the run directory.", show_default=False)] = None,
    compare_with: Annotated[list[Path], typer.Option("--compare", help="Another run to compare with (repeatable).")] = [],
    out: Annotated[Optional[Path], typer.Option(help="Folder for the HTML files (default RUN/report).")] = None,
    host: Annotated[str, typer.Option(help="serve: address to bind; other than 127.0.0.1 exposes the report.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="serve: port.")] = 8765,
):
    """The skill-gap report: overview, skill map, missing skills per round, a page per skill
    with the failing attempts and the teacher's diagnoses, and comparisons. `sgi report RUN`
    writes self-contained HTML files that open from disk; `sgi report serve RUN` serves the
    same pages live (a running run included: they read the snapshot it publishes)."""
    from sgi.reports.pages import Site, write_site

    serving = target == "serve"
    run = run_dir if serving else Path(target)
    if run is None:
        raise typer.BadParameter("`sgi report serve` needs a run directory, e.g. `sgi report serve runs/default`")
    if run_dir is not None and not serving:
        raise typer.BadParameter(f"unexpected {run_dir}: use `sgi report RUN` or `sgi report serve RUN`")
    for path in (run, *compare_with):
        if not (path / STORE_FILE).is_file():
            raise StoreError(f"{path}: no run store here (is this a run directory?)")
    if serving:
        from sgi.reports.server import serve

        _check_address(host, port)

        site = Site(run, compare_with, live=True)
        site.render("index.html")  # fail here, with the reason, rather than on the first request
        if host not in ("127.0.0.1", "localhost", "::1"):
            Console(stderr=True).print(f"[yellow]warning:[/yellow] binding {as_markup(host)}: anyone who can reach "
                                       "this machine can read the report (model answers, the config)", highlight=False)
        console.print(f"serving the report of {as_markup(run)} on http://{as_markup(host)}:{port}/ (Ctrl-C stops)")
        serve(site, host=host, port=port)
        return
    folder = out or run / "report"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: a file is there; give a folder for the report's pages")
    try:
        with Progress(*Progress.get_default_columns(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("writing pages", total=None)
            count = write_site(Site(run, compare_with), folder, progress=lambda _name: bar.advance(task))
    except OSError as err:  # an unwritable or full place for the pages
        raise ConfigError(f"--out {folder}: cannot write the report there ({err.strerror or err})") from None
    console.print(f"wrote {count} pages to {as_markup(folder)}; open {as_markup(folder / 'index.html')}")


def _check_address(host: str, port: int) -> None:
    """Fail before serving, naming the address, where it cannot be listened on (a port out of
    range or in use, a host that is not this machine's): not after the report has loaded."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: give a port from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as err:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({err.strerror or err}); "
                          "pick another with --port or --host") from None


AddressOpt = Annotated[str, typer.Option(
    envvar="SGI_RAY_ADDRESS", help="The Ray dashboard of the cluster's head (its job server).")]


@app.command()
def submit(
    config: ConfigArg = None, set_: SetOpt = [], address: AddressOpt = DEFAULT_ADDRESS,
    runs_dir: Annotated[Optional[Path], typer.Option(
        help="Where runs live on the cluster: an absolute path every node shares (default: the config's runs_dir).")] = None,
    pip: Annotated[list[str], typer.Option(help="A pip requirement for the job's runtime_env (repeatable); "
                                                "nodes set up from ray_cluster.yaml need none.")] = [],
    env: Annotated[list[str], typer.Option(help="NAME=VALUE for the job's environment (repeatable; no secrets).")] = [],
    wait: Annotated[bool, typer.Option(help="Follow the job's log until it ends; exit 1 unless it succeeded.")] = False,
):
    """Submit a run to a Ray cluster as a Ray job (`sgi run` on the head node). Submitting
    the same config again continues the run where it stopped."""
    from sgi.orchestrator import jobs

    cfg = load_config(config, set_ + ([f"runs_dir={runs_dir}"] if runs_dir else []))
    runtime_env = jobs.runtime_env(cfg, pip, env)
    sdk = jobs.client(address)
    job_id = jobs.submit(sdk, cfg, runtime_env)
    run_dir = as_markup(cfg.run_dir)
    console.print(f"submitted run [bold]{as_markup(cfg.name)}[/bold] ({run_dir}) as job [bold]{job_id}[/bold]\n"
                  f"  sgi logs {job_id} --follow    sgi stop {job_id}    sgi report serve {run_dir}", highlight=False)
    if wait:
        _follow(sdk, job_id)


@app.command("jobs")
def list_jobs(address: AddressOpt = DEFAULT_ADDRESS):
    """The cluster's sgi jobs, newest first."""
    from sgi.orchestrator import jobs

    table = Table(title=f"sgi jobs at {address}")
    for col in ("job", "status", "run", "started", "message"):
        table.add_column(col, no_wrap=col in ("job", "status"))
    for job in jobs.sgi_jobs(jobs.client(address)):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time / 1000)) if job.start_time else ""
        table.add_row(job.submission_id, job.status.value, as_text(job.metadata.get("sgi_run_dir", "")), started,
                      as_text((job.message or "")[:80]))
    console.print(table)


@app.command()
def logs(job_id: Annotated[str, typer.Argument(help="A job id from `sgi submit` or `sgi jobs`.")],
         address: AddressOpt = DEFAULT_ADDRESS,
         follow: Annotated[bool, typer.Option(help="Keep streaming until the job ends.")] = False):
    """A submitted run's log (its progress as JSON lines)."""
    from sgi.orchestrator import jobs

    sdk = jobs.client(address)
    if follow:
        _follow(sdk, job_id)
    else:
        sys.stdout.write(jobs.logs(sdk, job_id))


def _follow(sdk: Any, job_id: str) -> None:
    from sgi.orchestrator import jobs

    state = jobs.follow(sdk, job_id, lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    Console(stderr=True).print(f"job {job_id}: {state}", highlight=False)
    if state != "SUCCEEDED":
        raise SystemExit(1)


@app.command("stop")
def stop_job(job_id: Annotated[str, typer.Argument(help="A job id from `sgi submit` or `sgi jobs`.")],
             address: AddressOpt = DEFAULT_ADDRESS):
    """Stop a submitted run: it finishes the batch in hand and can be resumed by submitting again."""
    from sgi.orchestrator import jobs

    stopped = jobs.stop(jobs.client(address), job_id)
    console.print(f"job {job_id}: " + ("stop requested" if stopped else "had already ended"))


@app.command()
def profile(config: ConfigArg = None, set_: SetOpt = [], quiet: QuietOpt = False, progress: ProgressOpt = "bars"):
    """Label the task's skills, let the student answer the probe split, diagnose its
    failures, and print the Missing-Skill-Profile (worst skill first)."""
    from sgi.orchestrator import loop

    cfg = load_config(config, set_)
    reporter = _reporter(quiet, progress)
    console.print(f"run [bold]{as_markup(cfg.name)}[/bold] in {as_markup(cfg.run_dir)}  (task {cfg.task.kind}, "
                  f"student {as_markup(cfg.student.model)}, teacher {cfg.teacher.kind})")
    with stop_on_signals(reporter, cfg.run_dir):
        rows = loop.profile(cfg, reporter)
    console.print(msp_table(rows, title=f"Missing-Skill-Profile, round 0 ({as_markup(cfg.run_dir / STORE_FILE)})"))


@app.command()
def status(run_dir: Annotated[Path, typer.Argument(help="A run directory, e.g. runs/default.")]):
    """What a run holds: config, splits, skills, stage ledger and the latest profile."""
    store = _reader(run_dir)
    try:
        info = store.run_info()
        console.print(f"run [bold]{as_markup(info[0]) if info else '?'}[/bold]  {as_markup(run_dir / STORE_FILE)}")
        splits = ", ".join(f"{k} {v}" for k, v in store.split_counts().items())
        console.print(f"items: {splits or 'none yet'}")
        console.print("holds: " + ", ".join(f"{n} {what}" for what, n in store.counts().items()))
        ledger = Table(title="stages")
        for col in ("round", "stage", "status", "seconds", "detail"):
            ledger.add_column(col)
        for round_, stage, state, seconds, detail in sorted(store.ledger(), key=lambda r: _stage_order(r.round, r.stage)):
            ledger.add_row(round_cell(round_, "setup"), stage, state,
                           f"{seconds:.1f}" if seconds is not None else "", as_text(detail))
        console.print(ledger)
        usage = store.teacher_usage()
        if usage:
            console.print(teacher_usage_table(usage))
        summary = store.round_summary()
        if summary:
            console.print(summary_table(summary, title="per round (held-out accuracy)"))
        composed = store.compose_summary()
        if composed:
            console.print(compose_table(composed, title="System 1 + System 2 on the test split"))
            console.print(metrics_table(store.compose_metrics()))
        rounds = store.rounds()
        if rounds:
            console.print(msp_table(store.profile(rounds[-1]), title=f"Missing-Skill-Profile, round {rounds[-1]}"))
    finally:
        store.close()


def _reader(run_dir: Path) -> Store:
    """The run's store, read-only; for a run in progress, the snapshot it publishes (DuckDB
    would refuse the store itself), said on stderr with its age."""
    from sgi.reports.source import published

    live = published(run_dir)
    if live is None:
        if warning := leftover_log(run_dir):
            Console(stderr=True).print(f"[yellow]note:[/yellow] {as_markup(warning)}", highlight=False, soft_wrap=True)
        return Store(run_dir / STORE_FILE, read_only=True)
    path, held_by = live
    age = time.time() - path.stat().st_mtime
    Console(stderr=True).print(f"run in progress ({as_markup(held_by)}): showing its snapshot from {age:.0f} s ago",
                               highlight=False)
    return Store(path, read_only=True)


def _stage_order(round_: int, stage: str) -> tuple[int, int]:
    """The registry's order of a ledger row (a stage it no longer knows goes last in its round)."""
    try:
        return registry.position(round_, stage)
    except ValueError:
        return round_, len(registry.stages_of(round_))


def teacher_usage_table(rows: list[TeacherUsage]) -> Table:
    """The LLM teacher's requests and tokens per stage and prompt template."""
    table = Table(title="LLM teacher usage (tries sent; cached answers cost nothing)")
    for col in ("round", "stage", "template", "tries", "errors", "prompt tokens", "completion tokens", "seconds"):
        table.add_column(col, justify="left" if col in ("stage", "template") else "right")
    for round_, stage, template, calls, errors, prompt, completion, seconds in rows:
        table.add_row(round_cell(round_, "setup"), stage, template, str(calls), str(errors),
                      str(prompt), str(completion), f"{seconds:.1f}")
    return table


def msp_table(rows: list[ProfileRow], title: str) -> Table:
    table = Table(title=title)
    for col in ("skill", "attempts", "correct", "accuracy", "floor", "missing", "missing rate", "share"):
        table.add_column(col, justify="left" if col == "skill" else "right", no_wrap=(col == "skill"))
    for skill, attempts, correct, missing, rate, share, accuracy, floor in rows:
        table.add_row(as_text(skill), str(attempts), str(correct), f"{accuracy:.2f}", f"{floor:.2f}", str(missing),
                      f"{rate:.2f}", f"{share:.2f}" if share is not None else "-")
    return table


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, deprecation notes) out of the run's output.

    Set in the environment so Ray's worker processes, started after this, inherit it.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download weights at run time
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)


# User mistakes only; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, StoreError, TaskDataError, ModelNotFoundError, FileNotFoundError,
               TeacherOutputError, TeacherRefused, JobError)  # a teacher that could not answer: not a bug of ours


def main() -> None:
    """Entry point: user mistakes print one clear line (exit 2), not a traceback."""
    quiet_libraries()
    try:
        app()
    except USER_ERRORS as err:
        _print_error(err)
        raise SystemExit(2) from None
    except EngineDied as err:  # the run is resumable; the message says how
        _print_error(err)
        raise SystemExit(3) from None
    except duckdb.Error as err:  # a store found damaged only when a page of it is read
        if (problem := damaged(err)) is None:
            raise
        _print_error(problem)
        raise SystemExit(2) from None


def _print_error(err: Exception) -> None:
    """One line; the message quotes user data, so rich must not read it as markup or emoji.
    An error raised in an engine's actor arrives wrapped by Ray with the remote traceback in
    its text, so its cause is printed."""
    err = getattr(err, "cause", err)
    Console(stderr=True).print(f"[red]error:[/red] {as_markup(err)}", highlight=False, soft_wrap=True, emoji=False)
