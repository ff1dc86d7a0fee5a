"""API tokens on every backend (the api_tokens table on SQLite and PostgreSQL, the store
object on memory), and the tokens CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventkeep
from eventkeep import EventStore, NotFoundError, ValidationError
from eventkeep.cli import main
from eventkeep.server.tokens import authenticate, create_token, list_tokens, revoke_token


def test_a_token_authenticates_until_it_is_revoked(store: EventStore) -> None:
    token, record = create_token(store, name="ci", scope="append", prefixes=["acc-"], rate_limit=5)
    found = authenticate(store, token)
    assert found == record
    assert found is not None
    assert [found.allows(scope) for scope in ("read", "append", "admin")] == [True, True, False]
    assert [found.reaches(s) for s in ("acc-1", "user-1")] == [True, False]
    assert authenticate(store, token + "x") is None
    assert authenticate(store, "ekt_" + record.token_id + "_guess") is None
    revoked = revoke_token(store, record.token_id)
    assert revoked.revoked
    assert authenticate(store, token) is None
    assert [t.token_id for t in list_tokens(store)] == [record.token_id]
    assert list_tokens(store)[0].revoked


def test_bad_token_requests_store_nothing(store: EventStore) -> None:
    with pytest.raises(ValidationError, match="scope must be one of"):
        create_token(store, name="x", scope="root")
    with pytest.raises(ValidationError, match="prefix"):
        create_token(store, name="x", scope="read", prefixes="acc-")
    with pytest.raises(ValidationError, match="rate_limit"):
        create_token(store, name="x", scope="read", rate_limit=0)
    with pytest.raises(NotFoundError):
        revoke_token(store, "nosuchtoken")
    assert list_tokens(store) == []


def test_tokens_survive_reopening_a_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    with eventkeep.open_store(url) as store:
        token, _ = create_token(store, name="ops", scope="admin")
    with eventkeep.open_store(url) as store:
        found = authenticate(store, token)
    assert found is not None
    assert found.scope == "admin"


def test_the_tokens_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner(env={"COLUMNS": "120", "EVENTKEEP_STORE": None})
    created = runner.invoke(
        main, ["tokens", "create", "--scope", "admin", "--json", "--store", url]
    )
    assert created.exit_code == 0, created.output
    token = json.loads(created.output)["token"]
    assert token.startswith("ekt_")
    listed = runner.invoke(main, ["tokens", "list", "--json", "--store", url])
    [entry] = json.loads(listed.output)
    assert token not in listed.output
    revoked = runner.invoke(main, ["tokens", "revoke", entry["token_id"], "--store", url])
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    missing = runner.invoke(main, ["tokens", "revoke", "nope", "--store", url])
    assert missing.exit_code == 4
    assert "Traceback" not in missing.output
    with eventkeep.open_store(url) as store:
        assert authenticate(store, token) is None


def test_serve_says_what_to_install_when_the_server_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = CliRunner().invoke(main, ["serve", "--store", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "pip install 'eventkeep[server]'" in result.output
    assert "Traceback" not in result.output


def test_anonymous_read_is_refused_off_loopback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--host",
            "0.0.0.0",
            "--anonymous-read",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
    )
    assert result.exit_code == 2
    assert "loopback" in result.output
