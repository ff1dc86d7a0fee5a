"""The bank example: its rules, its two styles, and its importability from the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from eventkeep import EventStore, Repository
from eventkeep.examples.bank import (
    AccountClosed,
    AccountClosedError,
    AccountOpened,
    BankAccount,
    BankError,
    CloseAccount,
    Deposit,
    Deposited,
    InsufficientFundsError,
    OpenAccount,
    Withdraw,
    Withdrawn,
    account_decider,
)

ROOT = Path(__file__).resolve().parents[2]


def test_an_account_is_opened_takes_deposits_and_withdrawals(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    account = accounts.create("alice")
    account.open(owner="Alice", currency="CHF")
    account.deposit(Decimal("100.00"))
    account.withdraw(Decimal("60.00"))
    accounts.save(account)
    loaded = accounts.load("alice")
    assert (loaded.owner, loaded.currency, loaded.balance) == ("Alice", "CHF", Decimal("40.00"))
    assert [r.event for r in store.read_stream("bankaccount-alice")] == [
        AccountOpened(owner="Alice", currency="CHF"),
        Deposited(amount=Decimal("100.00"), currency="CHF"),
        Withdrawn(amount=Decimal("60.00")),
    ]


def test_an_overdraft_is_refused_and_records_nothing() -> None:
    account = BankAccount("alice")
    account.open(owner="Alice")
    account.deposit(Decimal("10.00"))
    with pytest.raises(
        InsufficientFundsError, match=r"balance 10\.00, cannot withdraw 10\.01"
    ) as e:
        account.withdraw(Decimal("10.01"))
    assert (e.value.balance, e.value.amount) == (Decimal("10.00"), Decimal("10.01"))
    assert account.balance == Decimal("10.00")
    assert len(account.pending_events) == 2


@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "Infinity"])
def test_amounts_must_be_positive(amount: str) -> None:
    account = BankAccount("alice")
    account.open(owner="Alice")
    with pytest.raises(BankError, match="positive Decimal"):
        account.deposit(Decimal(amount))
    with pytest.raises(BankError, match="positive Decimal"):
        account.withdraw(Decimal(amount))


def test_an_account_opens_once_and_closes_when_empty() -> None:
    account = BankAccount("alice")
    with pytest.raises(AccountClosedError):
        account.deposit(Decimal("1.00"))
    with pytest.raises(BankError, match="needs an owner"):
        account.open(owner=" ")
    account.open(owner="Alice")
    with pytest.raises(BankError, match="already exists"):
        account.open(owner="Alice")
    account.deposit(Decimal("1.00"))
    with pytest.raises(BankError, match="withdraw it first"):
        account.close()
    account.withdraw(Decimal("1.00"))
    account.close()
    with pytest.raises(AccountClosedError):
        account.deposit(Decimal("1.00"))
    assert account.pending_events[-1] == AccountClosed()


def test_the_decider_applies_the_same_rules() -> None:
    opened = [AccountOpened(owner="A"), Deposited(amount=Decimal("5.00"), currency="EUR")]
    assert account_decider.run(Withdraw(Decimal("5.00")), given=opened) == [
        Withdrawn(amount=Decimal("5.00"))
    ]
    with pytest.raises(InsufficientFundsError):
        account_decider.run(Withdraw(Decimal("5.01")), given=opened)
    with pytest.raises(BankError, match="already exists"):
        account_decider.run(OpenAccount(owner="A"), given=opened)
    with pytest.raises(BankError, match="needs an owner"):
        account_decider.run(OpenAccount(owner=""))
    with pytest.raises(AccountClosedError):
        account_decider.run(Deposit(Decimal("1.00")))
    with pytest.raises(BankError, match="positive"):
        account_decider.run(Deposit(Decimal("-1")), given=opened)
    with pytest.raises(BankError, match="withdraw it first"):
        account_decider.run(CloseAccount(), given=opened)
    emptied = [*opened, Withdrawn(amount=Decimal("5.00"))]
    assert account_decider.run(CloseAccount(), given=emptied) == [AccountClosed()]
    with pytest.raises(AccountClosedError):
        account_decider.run(Deposit(Decimal("1.00")), given=[*emptied, AccountClosed()])


def run_from_root(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_examples_bank_is_importable_from_the_repository_root() -> None:
    out = run_from_root(
        "import examples.bank, eventkeep.examples.bank as shipped;"
        "print(examples.bank.BankAccount is shipped.BankAccount, sorted(examples.bank.__all__)"
        " == sorted(shipped.__all__))",
        ROOT,
    )
    assert out.split() == ["True", "True"]


def test_the_readme_of_the_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "examples" / "bank" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1
    out = run_from_root(blocks[0], tmp_path)
    assert out.splitlines() == [
        "insufficient funds in alice: balance 70.00, cannot withdraw 1000.00",
        "70.00",
        "100.00",
    ]
