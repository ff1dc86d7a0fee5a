"""Worker processes for the projection tests: writers that keep appending bank operations.

python projection_workers.py bank URL SEED STOP_FILE   # until STOP_FILE exists
python projection_workers.py log URL WRITER COUNT      # COUNT numbered events, then exit
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

import eventkeep
from eventkeep.examples.bank import BankAccount, BankError, Deposited
from eventkeep.examples.bank.transfers import request_transfer

ACCOUNTS = ("a1", "a2", "a3", "a4", "a5")
LIFETIME = 280.0
"""A bank writer stops on its own after this many seconds, whatever happens to its test: a
safety net only (just under pytest's 300 s timeout). Tests stop writers with the stop file, as
late as they need, and a test that needs more events waits for them rather than for time."""


def bank(url: str, seed: int, stop_file: Path) -> None:
    rng = random.Random(seed)
    store = eventkeep.open_store(url)
    accounts = eventkeep.Repository(store, BankAccount)
    deadline = time.monotonic() + LIFETIME
    done = 0
    while not stop_file.exists() and time.monotonic() < deadline:
        account = rng.choice(ACCOUNTS)
        amount = Decimal(rng.randint(1, 5000)) / 100
        roll = rng.random()
        if roll < 0.6:
            store.append(f"bankaccount-{account}", [Deposited(amount=amount, currency="EUR")])
        elif roll < 0.8:
            with contextlib.suppress(BankError):
                accounts.execute(account, lambda a, amount=amount: a.withdraw(amount), retries=20)
        else:
            target = rng.choice([a for a in ACCOUNTS if a != account])
            request_transfer(store, account, target, amount * 5)
        done += 1
        time.sleep(rng.uniform(0, 0.004))
    print(f"wrote {done}", flush=True)


def log(url: str, writer: int, count: int) -> None:
    store = eventkeep.open_store(url)
    for seq in range(count):
        store.append(f"w{writer}-{seq % 7}", [eventkeep.RawEvent("Numbered", {"seq": seq})])
        if seq % 50 == 0:
            time.sleep(0.002)
    print("done", flush=True)


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "bank":
        bank(url, int(rest[0]), Path(rest[1]))
    elif command == "log":
        log(url, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
