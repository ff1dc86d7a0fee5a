"""``eventkeep export``, ``import``, ``copy`` and ``backup`` through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

import eventkeep
from eventkeep.cli import main

Invoke = Callable[..., Result]


def _store_with_events(url: str) -> None:
    with eventkeep.open_store(url) as store:
        store.append("order-1", [eventkeep.RawEvent("Placed", {"total": "9.90"})])
        store.append(
            "order-1",
            [eventkeep.NewEvent(eventkeep.RawEvent("Paid", {"by": "card"}), tags=["customer:7"])],
        )
        store.append("invoice-1", [eventkeep.RawEvent("Issued", {"n": 1})])


def _run(runner: CliRunner, *args: str, expect: int = 0, input: bytes | None = None) -> str:
    result = runner.invoke(main, list(args), input=input)
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    return result.output


def test_export_then_import_into_another_store_keeps_every_event(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    out = tmp_path / "log.jsonl"
    _run(runner, "--store", db_url, "export", "--output", str(out))
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [line["kind"] for line in lines] == ["header", "event", "event", "event", "end"]
    assert lines[0]["format"] == "eventkeep-export"
    assert lines[0]["format_version"] == 1
    assert lines[2]["data"] == {"by": "card"}
    assert lines[2]["tags"] == ["customer:7"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    said = _run(runner, "--store", other, "import", str(out))
    assert said.strip() == f"Imported 3 events into {other} (0 already there)."
    again = _run(runner, "--store", other, "import", str(out))
    assert "Imported 0 events" in again
    assert "(3 already there)" in again
    with eventkeep.open_store(db_url) as a, eventkeep.open_store(other) as b:
        assert list(a.export()) == list(b.export())
        assert b.verify().ok


def test_export_to_stdout_of_a_stream_prefix_imports_from_stdin(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    exported = runner.invoke(main, ["--store", db_url, "export", "--stream-prefix", "order-"])
    assert exported.exit_code == 0
    text = exported.stdout
    assert '"invoice-1"' not in text
    other = f"sqlite:///{tmp_path / 'orders.db'}"
    said = _run(runner, "--store", other, "import", "-", input=text.encode())
    assert "Imported 2 events" in said


def test_an_edited_export_is_refused_and_nothing_is_imported(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    out = tmp_path / "log.jsonl"
    _run(runner, "--store", db_url, "export", "-o", str(out))
    out.write_text(out.read_text("utf-8").replace('"9.90"', '"0.99"'), "utf-8")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    said = _run(runner, "--store", other, "import", str(out), expect=1)
    assert "hash does not match" in said
    with eventkeep.open_store(other) as store:
        assert store.head_position() == 0


def test_an_export_cut_short_imports_what_it_holds_and_says_so(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    out = tmp_path / "log.jsonl"
    _run(runner, "--store", db_url, "export", "-o", str(out))
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(out.read_text("utf-8").splitlines(keepends=True)[:3]), "utf-8")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    said = _run(runner, "--store", other, "import", str(cut), expect=1)
    assert "Imported 2 events" in said
    assert "cut short" in said
    assert "Imported 1 event " in _run(runner, "--store", other, "import", str(out))


def test_import_refuses_what_is_not_an_export(cli: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n', "utf-8")
    said = cli("import", str(bad), expect=2).output
    assert "line 1 is not an eventkeep export header" in said
    bad.write_text('{"kind":"header","format":"eventkeep-export","format_version":9}\n')
    assert (
        "format version 9; this eventkeep reads version 1"
        in cli("import", str(bad), expect=2).output
    )


def test_export_refuses_to_overwrite_a_file(cli: Invoke, db_url: str, tmp_path: Path) -> None:
    _store_with_events(db_url)
    (tmp_path / "there.jsonl").write_text("x")
    assert "exists already" in cli("export", "-o", str(tmp_path / "there.jsonl"), expect=2).output


def test_copy_twice_copies_once_and_then_resumes_at_the_end(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    said = _run(runner, "copy", db_url, copy)
    assert said.startswith("Copied 3 events from ")
    again = _run(runner, "copy", db_url, copy)
    assert "Copied 0 events" in again
    assert "resumed after position 3" in again
    missing = _run(runner, "copy", f"sqlite:///{tmp_path / 'nope.db'}", copy, expect=4)
    assert "does not exist" in missing
    with eventkeep.open_store(copy) as store:
        store.append("order-1", [eventkeep.RawEvent("Extra", {})])
    assert "is not a copy" in _run(runner, "copy", db_url, copy, expect=2)


def test_backup_writes_a_verified_copy(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    _store_with_events(db_url)
    target = tmp_path / "backup.db"
    said = _run(runner, "--store", db_url, "backup", str(target), "--verify")
    assert f"Backed up {db_url} to {target}." in said
    assert "Verified: 3 events, intact." in said
    assert "exists already" in _run(runner, "--store", db_url, "backup", str(target), expect=2)


def test_export_names_the_archives_and_import_takes_them_from_a_directory(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    _store_with_events(db_url)
    with eventkeep.open_store(db_url) as store:
        store.truncate("order-1", 2, by="test", reason="old")
        store.delete_stream("invoice-1", by="test", reason="closed")
        source_archives = store.archive_dir
    assert source_archives is not None
    out = tmp_path / "log.jsonl"
    result = runner.invoke(main, ["--store", db_url, "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "names 1 archive file" in result.stderr
    kinds = [json.loads(line)["kind"] for line in out.read_text("utf-8").splitlines()]
    assert kinds == ["header", "operation", "operation", "stream_meta", "event", "event", "end"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    said = _run(runner, "--store", other, "import", str(out), "--archives", str(source_archives))
    assert "Archive files: 1 copied, 0 already there." in said
    with eventkeep.open_store(db_url) as a, eventkeep.open_store(other) as b:
        assert list(a.export()) == list(b.export())
        assert a.operations() == b.operations()
        assert b.verify().ok
        assert b.deletion("invoice-1") is not None
    said = _run(runner, "copy", db_url, f"sqlite:///{tmp_path / 'copy.db'}")
    assert "1 archive file copied" in said
