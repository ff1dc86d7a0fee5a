"""The bank account example: ``import examples.bank`` from the repository root.

The code lives in the installed package, ``src/eventkeep/examples/bank/``, so that
``eventkeep demo`` runs it after ``pip install eventkeep`` too; this package re-exports it.
Read and copy it from there (see README.md here).
"""

from eventkeep.examples.bank import (
    Account,
    AccountClosed,
    AccountClosedError,
    AccountEvent,
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
    transfer,
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
