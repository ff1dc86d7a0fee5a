"""Two store handles make the first key of the same data subject at once: the append that
loses the race is sealed again with the winner's key, and every value reads back."""

from __future__ import annotations

import threading
from pathlib import Path

import eventkeep
from eventkeep.testing.events import CustomerRegistered, EmailChanged


def test_the_append_that_loses_the_first_key_race_is_sealed_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    winner = eventkeep.open_store(url)
    loser = eventkeep.open_store(url, busy_timeout=30)
    errors: list[BaseException] = []
    try:
        with winner.transaction() as tx:
            # c1's key is written in this open transaction, invisible to the other handle:
            # it makes a key of its own, and waits for the write lock this one holds.
            tx.append("a", [CustomerRegistered(customer_id="c1", email="win@example.com")])

            def append() -> None:
                try:
                    loser.append("b", [EmailChanged(customer_id="c1", email="lose@example.com")])
                except BaseException as exc:  # reported below
                    errors.append(exc)

            thread = threading.Thread(target=append)
            thread.start()
            thread.join(0.5)  # it has prepared its events, and waits for the lock
        thread.join(30)
        assert not thread.is_alive()
        assert errors == []
        with eventkeep.open_store(url) as fresh:
            emails = [e.data["email"] for e in fresh.read_all()]
            keys = fresh.key_store.keys(["c1"])
        assert emails == ["win@example.com", "lose@example.com"]
        assert len(keys) == 1
    finally:
        winner.close()
        loser.close()
