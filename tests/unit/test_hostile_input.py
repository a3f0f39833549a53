"""Hostile but fair input, round two (issue 21): each class of bad input through the real
CLI (`cli.main` in-process, the `sgi` fixture) and a real DuckDB store gives exit code 2,
one `error: ...` line naming the thing, no traceback, and writes or truncates nothing.

Runs whose names and folders YAML would misread are resumed and composed for real in
tests/integration/test_run_e2e.py (the System-2 cache test's second run).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
from support.cli import one_error_line

from sgi.orchestrator.config import ConfigError, load_config
from sgi.orchestrator.store import Store
from sgi.skills.llm_teacher import ChatRequest
from sgi.skills.tasks.files import FileTask
from sgi.workers.llm_client import ChatClient, redact

QA = {"question": "q", "answer": "a"}


def write_rows(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- run names and folders are text, never YAML ------------------------------------------------


def test_text_fields_take_the_text_as_written():
    cfg = load_config(None, ["name=2024", "runs_dir=/tmp/a: b [c]", "teacher.llm.structured=off",
                             "student.system_prompt=Answer: briefly"])
    assert (cfg.name, str(cfg.runs_dir)) == ("2024", "/tmp/a: b [c]")
    assert cfg.teacher.llm.structured == "off"  # YAML 1.1 would read `off` as false
    assert cfg.student.system_prompt == "Answer: briefly"
    assert load_config(None, ["name=1e3"]).name == "1e3" and load_config(None, ["name=true"]).name == "true"
    # numbers, lists and mappings are still read as YAML, and null still clears an optional text
    cfg = load_config(None, ["student.batch_size=8", "task.gym.families={add_sub: 4}", "compose.token.model=null"])
    assert (cfg.student.batch_size, cfg.task.gym.families, cfg.compose.token.model) == (8, {"add_sub": 4}, None)


def test_a_run_directory_is_placed_as_it_is_over_its_stored_config(tmp_path):
    stored = "name: old\nruns_dir: elsewhere\n"
    folder = tmp_path / "runs: [x]"
    cfg = load_config(None, ["student.batch_size=4"], stored=stored, placed={"runs_dir": folder, "name": "2024"})
    assert cfg.run_dir == folder / "2024" and cfg.student.batch_size == 4


@pytest.mark.parametrize("override, message", [
    ("name=[oops", "name: String should match pattern"),
    ("name=a: b", "name: String should match pattern"),
    ("task.gym.families={add_sub: [1", "--set task.gym.families: '{add_sub: [1' is not a YAML value"),
    ("student.batch_size=a: b", "student.batch_size: Input should be a valid integer"),
])
def test_a_bad_override_is_one_line_naming_its_key(sgi, tmp_path, override, message):
    one_error_line(*sgi("profile", "--set", override)[::2], message)
    assert not (tmp_path / "runs" / "default").exists()


def test_duplicate_keys_and_an_empty_file_are_refused(sgi, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("name: a\nstudent:\n  batch_size: 4\nname: b\n", encoding="utf-8")
    one_error_line(*sgi("profile", str(config))[::2], f"{config}:4: invalid YAML (duplicate key 'name')")
    config.write_text("# nothing but a comment\n", encoding="utf-8")
    one_error_line(*sgi("profile", str(config))[::2], f"{config}: the config file is empty")
    assert not (tmp_path / "runs" / "default").exists()


# -- a file task the rules teacher cannot label --------------------------------------------------


def test_the_rules_teacher_on_a_file_without_a_skills_column_is_refused(sgi, tmp_path):
    data = write_rows(tmp_path / "items.jsonl", ['{"q": "1 + 1?", "a": "2"}'])
    code, _, err = sgi("profile", "--set", "task.kind=file", "--set", f"task.file={{path: {data}, fields: {QA}}}")
    one_error_line(code, err, "teacher.kind 'rules'", "task.file.fields.skills", "embed, llm or local")
    assert not (tmp_path / "runs" / "default").exists()


# -- text that is not text -------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\ud800", "\\udcff", "\\udfff"])
def test_a_lone_surrogate_escape_names_line_and_field_and_can_be_skipped(sgi, tmp_path, escape):
    data = write_rows(tmp_path / "items.jsonl",
                      ['{"q": "What is 1 + 1?", "a": "2"}', f'{{"q": "What is 2 + 2? {escape}", "a": "4"}}'])
    task = FileTask(data, QA, on_bad_row="skip")
    assert [i.answer for i in task.load_items()] == ["2"]
    assert task.skipped == [(2, task.skipped[0][1])] and "unpaired surrogate escape" in task.skipped[0][1]
    code, _, err = sgi("profile", "--set", "task.kind=file", "--set", f"task.file={{path: {data}, fields: {QA}}}",
                       "--set", "teacher.kind=embed")
    line = one_error_line(code, err, f"{data}, line 2: field 'q' holds an unpaired surrogate escape")
    assert "non-UTF-8" not in line  # an escape in the text is not a byte of the file
    assert not (tmp_path / "runs" / "default").exists()


def test_split_columns_with_the_usual_names_are_read_as_ours(tmp_path):
    rows = [{"q": f"What is {n} + 1?", "a": str(n + 1), "s": split}
            for n, split in enumerate(["train", "Train", "validation", "dev", "val", "test", "pool"])]
    data = write_rows(tmp_path / "items.jsonl", [json.dumps(r) for r in rows])
    task = FileTask(data, {**QA, "split": "s"})
    assert [i.split for i in task.load_items()] == ["pool", "pool", "probe", "probe", "probe", "test", "pool"]
    assert task.aliased == {"train": "pool", "validation": "probe", "dev": "probe", "val": "probe"}


# -- a damaged store -------------------------------------------------------------------------------


def stored_run(tmp_path: Path, name: str) -> Path:
    """A run folder with a real store that holds only its config."""
    run = tmp_path / "runs" / name
    store = Store(run / "sgi.duckdb")
    store.record_run(name, f"name: {name}\n")
    store.close()
    return run


@pytest.fixture
def damaged_run(tmp_path) -> Path:
    """A real run store whose pages fail DuckDB's checksums (bytes flipped inside a block)."""
    run = stored_run(tmp_path, "hurt")
    data = bytearray((run / "sgi.duckdb").read_bytes())
    data[3 * 4096 + 100:3 * 4096 + 164] = b"\xff" * 64
    (run / "sgi.duckdb").write_bytes(bytes(data))
    return run


@pytest.mark.parametrize("command", ["status", "report", "compare", "resume", "compose"])
def test_a_damaged_store_is_named_not_dumped_and_left_as_it_is(sgi, damaged_run, tmp_path, command):
    before, files = digest(damaged_run / "sgi.duckdb"), sorted(p.name for p in damaged_run.iterdir())
    args = [command, str(damaged_run)] + ([str(damaged_run)] if command == "compare" else [])
    code, _, err = sgi(*args, run_options=command in ("resume", "compose"))
    one_error_line(code, err, f"{damaged_run / 'sgi.duckdb'}: the run store is damaged", "checksum")
    assert digest(damaged_run / "sgi.duckdb") == before
    assert sorted(p.name for p in damaged_run.iterdir()) == files  # no report folder, no lock left


def test_a_write_ahead_log_left_by_a_killed_writer_is_said_not_silently_dropped(sgi, tmp_path):
    run = stored_run(tmp_path, "cut")
    (run / "sgi.duckdb.wal").write_bytes(bytes(range(256)) * 8)  # garbage: DuckDB drops it
    code, out, err = sgi("status", str(run), run_options=False)
    assert code is None or code == 0, err
    assert "sgi.duckdb.wal (2,048 bytes) was left by a process that did not close the store" in err
    assert "run cut" in out and "Traceback" not in err


# -- models and keys checked before any work -------------------------------------------------------


def test_a_student_folder_without_weights_fails_before_any_work(sgi, tmp_path):
    model = tmp_path / "half-copied"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    code, _, err = sgi("profile", model_path=model)
    one_error_line(code, err, f"student model '{model}' has no weights")
    (model / "model.safetensors").write_bytes(b"")
    one_error_line(*sgi("profile", model_path=model)[::2], "has no tokenizer")
    (model / "config.json").write_text("{oops", encoding="utf-8")
    one_error_line(*sgi("profile", model_path=model)[::2], "has no readable config.json")
    assert not (tmp_path / "runs" / "default").exists()


def test_an_unset_key_variable_fails_before_any_work(sgi, tmp_path, monkeypatch):
    monkeypatch.delenv("SGI_UNSET_TEACHER_KEY", raising=False)
    code, _, err = sgi("profile", "--set", "teacher.kind=llm", "--set", "teacher.llm.base_url=http://127.0.0.1:9/v1",
                       "--set", "teacher.llm.model=m", "--set", "teacher.llm.api_key_env=SGI_UNSET_TEACHER_KEY")
    one_error_line(code, err, "teacher.llm.api_key_env: SGI_UNSET_TEACHER_KEY is not set in this environment")
    assert not (tmp_path / "runs" / "default").exists()


def test_a_bad_rl_config_is_one_line_before_any_work(sgi, tmp_path):
    one_error_line(*sgi("run", "--set", "loop.rl.enabled=true", "--set", "loop.rl.beta=-1")[::2],
                   "loop.rl.beta: Input should be greater than or equal to 0")
    assert not (tmp_path / "runs" / "default").exists()


# -- report and server arguments -------------------------------------------------------------------


@pytest.fixture
def a_run(tmp_path) -> Path:
    return stored_run(tmp_path, "fine")


def test_report_out_on_a_file_is_refused_and_the_file_kept(sgi, a_run, tmp_path):
    target = tmp_path / "report.html"
    target.write_text("mine", encoding="utf-8")
    one_error_line(*sgi("report", str(a_run), "--out", str(target), run_options=False)[::2], f"--out {target}: a file is there")
    assert target.read_text(encoding="utf-8") == "mine" and not (a_run / "report").exists()


def test_serve_on_a_port_out_of_range_or_in_use_is_one_line(sgi, a_run):
    one_error_line(*sgi("report", "serve", str(a_run), "--port", "70000", run_options=False)[::2], "--port 70000: give a port from 1 to 65535")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = sgi("report", "serve", str(a_run), "--port", str(port), run_options=False)
    one_error_line(code, err, f"--host 127.0.0.1 --port {port}: cannot listen there", "in use")


# -- provider error text -----------------------------------------------------------------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An OpenAI-style endpoint that refuses every call, echoing the key it was sent."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}. Also api_key={key}"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_provider_error_text_is_stored_with_the_key_redacted(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdefSECRET"
    monkeypatch.setenv("SGI_TEST_PROVIDER_KEY", secret)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = Store(tmp_path / "sgi.duckdb")
    try:
        client = ChatClient(f"http://127.0.0.1:{server.server_port}/v1", "m", api_key_env="SGI_TEST_PROVIDER_KEY",
                            max_retries=0, parse_retries=0, cache=store)
        request = ChatRequest("label.v1", [{"role": "user", "content": "hi"}], {"type": "object"}, 0.0, 8, 0,
                              parse=json.loads)
        [reply] = client.complete([request])
        errors = [e for (e,) in store.db.execute("SELECT error FROM teacher_calls").fetchall()]
    finally:
        server.shutdown()
        store.close()
    assert errors and all("401" in e and "[REDACTED]" in e for e in errors)
    assert secret not in reply.error and not any(secret in e or "0123456789" in e for e in errors)


def test_redact_keeps_ordinary_error_text():
    assert redact("RateLimitError: 429 the token budget was exceeded") == "RateLimitError: 429 the token budget was exceeded"
    assert redact("Authorization: Bearer abcdefgh12345678") == "Authorization: [REDACTED]"
    with pytest.raises(ConfigError):
        load_config(None, ["teacher.llm.api_key_env=sk-abc123-secret"])
