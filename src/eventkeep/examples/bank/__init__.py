"""The bank account: eventkeep's textbook example, complete and tested.

- :mod:`.events`: ``AccountOpened``, ``Deposited`` (schema version 2, upcast from 1),
  ``Withdrawn``, ``AccountClosed``.
- :mod:`.account`: ``BankAccount``, the class-based aggregate, with the "insufficient funds"
  rule, and ``transfer`` (two accounts, one transaction).
- :mod:`.decider`: the same account as a decider (``account_decider``).
- :mod:`.readmodels`: SQL read models, ``AccountBalances`` and ``DailyTransactions``.
- :mod:`.transfers`: transfers as a process, carried out by the ``TransferProcessor`` reactor.

::

    import eventkeep
    from eventkeep.examples.bank import BankAccount

    store = eventkeep.open_store("sqlite:///bank.db")
    accounts = eventkeep.Repository(store, BankAccount)
    account = accounts.create("alice")
    account.open(owner="Alice")
    account.deposit(Decimal("100.00"))
    accounts.save(account)

``eventkeep demo`` runs it end to end.
"""

from eventkeep.examples.bank.account import (
    AccountClosedError,
    BankAccount,
    BankError,
    InsufficientFundsError,
    transfer,
)
from eventkeep.examples.bank.decider import (
    Account,
    CloseAccount,
    Deposit,
    OpenAccount,
    Withdraw,
    account_decider,
)
from eventkeep.examples.bank.events import (
    AccountClosed,
    AccountEvent,
    AccountOpened,
    Deposited,
    Withdrawn,
)

__all__ = [
    "Account",
    "AccountClosed",
    "AccountClosedError",
    "AccountEvent",
    "AccountOpened",
    "BankAccount",
    "BankError",
    "CloseAccount",
    "Deposit",
    "Deposited",
    "InsufficientFundsError",
    "OpenAccount",
    "Withdraw",
    "Withdrawn",
    "account_decider",
    "transfer",
]
