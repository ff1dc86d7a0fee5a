"""``eventkeep demo``: the bank example, end to end, on a fresh store.

Everything shown is computed by the library on the spot; the code it runs is
``eventkeep.examples.bank`` (copy it from there).

Where it runs, and what is left afterwards:

- By default, a new SQLite file in a temporary folder, removed when the demo ends (``--keep``
  keeps it); or the new file ``--path`` names, which is kept.
- With a ``postgresql://`` store given explicitly (``--store`` or ``EVENTKEEP_STORE``), a new
  schema of that database, ``eventkeep_demo_<random>``, dropped when the demo ends unless
  ``--keep``. The demo never writes anywhere else, so it cannot touch a user's events.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

import eventkeep
from eventkeep import ConcurrencyError, EventStore, RawEvent, RecordedEvent, Repository
from eventkeep.cli._common import EXIT_USAGE, console, display_url, fail, plural, store_url
from eventkeep.examples.bank import (
    AccountOpened,
    BankAccount,
    Deposited,
    InsufficientFundsError,
    Withdrawn,
    account_decider,
    transfer,
)

__all__ = ["demo"]

SNAPSHOTS_REBUILD = "snapshots rebuild bankaccount --import eventkeep.examples.bank"
"""The ``eventkeep`` arguments that rebuild the demo's snapshots (step 6, and at the end)."""


@click.command(short_help="Run the bank example on a fresh store, step by step.")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The SQLite file to create (it must not exist); it is kept afterwards. Default: a new "
    "file in a temporary folder, removed at the end unless --keep.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the demo's store when it ends (the temporary folder, or the PostgreSQL schema) "
    "and print where it is and how to explore it.",
)
@click.pass_context
def demo(ctx: click.Context, path: Path | None, keep: bool) -> None:
    """Run the bank example on a fresh store and show what happens, step by step.

    Accounts are opened; money is deposited, withdrawn and transferred; an overdraft is
    refused; two tellers collide and the loser retries; the past is queried; snapshots kick
    in; events written by an older release are upcast; and the hash chains are verified.

    The demo never uses an existing store. It runs on a new SQLite file in a temporary folder,
    removed at the end unless --keep (or on the new file --path names, which is kept). Given a
    postgresql:// store (--store or EVENTKEEP_STORE), it runs in a new schema of that
    database, eventkeep_demo_<random>, dropped at the end unless --keep; nothing else in the
    database is touched.

    \b
    Examples:
      eventkeep demo
      eventkeep demo --keep
      eventkeep demo --path bank.db
      eventkeep --store postgresql://user@localhost/db demo
    """
    url = store_url(ctx)
    explicit = ctx.find_root().get_parameter_source("store") in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )
    if explicit and _is_postgres(url):
        if path is not None:
            fail(
                "--path names a SQLite file; with a postgresql:// store the demo runs in a new "
                "schema of that database (leave out --path, or the store)",
                EXIT_USAGE,
            )
        _run_on_postgres(url, keep)
        return
    if explicit:
        _say(
            f"(The demo does not use {display_url(url)}: it runs on a new SQLite file, or in a "
            "new schema when the store is a postgresql:// URL.)"
        )
    _run_on_sqlite(path, keep)


def _is_postgres(url: str) -> bool:
    return url.partition("://")[0].lower() in ("postgresql", "postgres")


def _run_on_sqlite(path: Path | None, keep: bool) -> None:
    folder: Path | None = None
    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="eventkeep-demo-"))
        path = folder / "bank.db"
    elif path.exists():
        fail(f"{path} already exists; the demo needs a fresh file (choose another --path)")
    if not path.parent.is_dir():
        fail(f"{path.parent} is not a directory", EXIT_USAGE)
    url = f"sqlite:///{path.resolve()}"
    try:
        with eventkeep.open_store(url) as store:
            Demo(store, console(), "SQLite").run()
    finally:
        if folder is not None and not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if folder is None:
        _explore(f"The store is kept in {path}.", url)
    elif keep:
        _explore(
            f"The store is kept in {path}.",
            url,
            done=f"Remove it when you are done: rm -r {shlex.quote(str(folder))}",
        )
    else:
        _say(
            f"\nThe demo's temporary folder {folder} has been removed.\n"
            "Run eventkeep demo --keep (or --path FILE) to keep the store and explore it."
        )


def _run_on_postgres(url: str, keep: bool) -> None:
    schema = f"eventkeep_demo_{secrets.token_hex(6)}"
    store = eventkeep.open_store(url, schema=schema)
    try:
        if store.head_position() != 0:  # a random name already in use: leave it alone
            fail(f"{store.url} already holds events; run the demo again (it picks a new schema)")
        try:
            Demo(store, console(), "PostgreSQL").run()
        finally:
            if not keep:
                with store.transaction() as tx:  # the schema was created for the demo alone
                    tx.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        store.close()
    if not keep:
        _say(
            f"\nThe demo's schema {schema} has been dropped; nothing else was touched.\n"
            "Run the demo with --keep to keep the schema and explore it."
        )
        return
    kept = _with_schema(url, schema)
    shown = display_url(kept)
    password = "*** stands for your password. " if shown != kept else ""
    _explore(
        f"The store is kept in the schema {schema}.",
        shown,
        done=f"{password}Drop the schema when you are done: DROP SCHEMA {schema} CASCADE;",
    )


def _with_schema(url: str, schema: str) -> str:
    """``url`` with its ``schema`` option set to ``schema`` (other options kept)."""
    parts = urlsplit(url)
    options = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key != "schema"
    ]
    return urlunsplit(parts._replace(query=urlencode([*options, ("schema", schema)])))


def _explore(where: str, url: str, done: str = "") -> None:
    store = f"eventkeep --store {shlex.quote(url)}"
    commands = [
        "log",
        "read bankaccount-alice",
        "projections status",
        SNAPSHOTS_REBUILD,
    ]
    lines = [f"\n{where} Explore it:", *(f"  {store} {command}" for command in commands)]
    if done:
        lines.append(done)
    _say("\n".join(lines))


def _say(text: str) -> None:
    # not wrapped, so that paths and commands can be copied whatever the terminal's width
    console().print(text, soft_wrap=True, markup=False)


def money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def clock(when: datetime) -> str:
    return when.strftime("%H:%M:%S.%f")[:-3]


class Demo:
    """The demo's steps, in order; each prints one section."""

    def __init__(self, store: EventStore, out: Console, backend: str) -> None:
        self.store = store
        self.out = out
        self.backend = backend
        self.accounts = Repository(store, BankAccount)
        self.before_tellers = datetime.now(UTC)

    def run(self) -> None:
        self.out.print(f"[bold]eventkeep demo[/]: a bank account, event-sourced, on {self.backend}")
        self.out.print(f"store: {self.store.url}", soft_wrap=True, markup=False)
        self.open_accounts()
        self.move_money()
        self.refuse_overdraft()
        self.collide()
        self.look_back()
        self.snapshots()
        self.upcast()
        self.two_styles()
        self.verify()
        self.read_models()

    def section(self, title: str) -> None:
        self.out.print()
        self.out.rule(f"[bold]{title}", align="left")

    def note(self, text: str) -> None:
        self.out.print(text, markup=False, highlight=False)

    # -- 1 -------------------------------------------------------------------------------------

    def open_accounts(self) -> None:
        self.section("1. Accounts opened")
        self.note('account = accounts.create("alice"); account.open(owner="Alice")')
        table = Table("Account", "Owner", "Stream", "Version", title_justify="left")
        for account_id, owner in (("alice", "Alice"), ("bob", "Bob")):
            account = self.accounts.create(account_id)
            account.open(owner=owner)
            self.accounts.save(account)
            stream = self.accounts.stream_id(account_id)
            table.add_row(account_id, owner, stream, str(account.version))
        self.out.print(table)

    # -- 2 -------------------------------------------------------------------------------------

    def move_money(self) -> None:
        self.section("2. Deposits, withdrawals and a transfer")
        with eventkeep.command_context(correlation_id="teller-1"):
            self.accounts.execute("alice", lambda a: a.deposit(Decimal("100.00")))
            self.accounts.execute("alice", lambda a: a.withdraw(Decimal("30.00")))
        with eventkeep.command_context(correlation_id="teller-2"):
            self.accounts.execute("bob", lambda a: a.deposit(Decimal("50.00")))
            transfer(self.accounts, "alice", "bob", Decimal("20.00"))
        self.note(
            "Commands run inside command_context(correlation_id=...), so every event they "
            "record carries that id. The transfer saves both accounts in one transaction: "
            "accounts.save(alice, bob)."
        )
        self.out.print(self.log_table(self.store.read_all()))
        # The store's clock, not this process's: a PostgreSQL server stamps recorded_at itself.
        head = self.store.head_position()
        self.before_tellers = next(iter(self.store.read_all(after=head - 1))).recorded_at
        time.sleep(0.002)  # the tellers' events are stamped later than this, never the same

    def log_table(self, events: Iterable[RecordedEvent]) -> Table:
        table = Table(
            "Pos", "Stream", "Ver", "Event", "Amount", "Correlation", title_justify="left"
        )
        for recorded in events:
            event = recorded.event
            amount = getattr(event, "amount", None)
            table.add_row(
                str(recorded.position),
                recorded.stream_id,
                str(recorded.version),
                type(event).__name__,
                money(amount) if isinstance(amount, Decimal) else "",
                str(recorded.correlation_id or ""),
            )
        return table

    # -- 3 -------------------------------------------------------------------------------------

    def refuse_overdraft(self) -> None:
        self.section("3. An overdraft, refused by the invariant")
        bob = self.accounts.load("bob")
        self.note(f"bob holds {money(bob.balance)} and asks to withdraw 500.00:")
        try:
            bob.withdraw(Decimal("500.00"))
        except InsufficientFundsError as exc:
            self.note(f"  refused: {exc}")
        stored = self.store.stream_version("bankaccount-bob")
        self.note(f"Nothing was recorded: bankaccount-bob is still at version {stored}.")

    # -- 4 -------------------------------------------------------------------------------------

    def collide(self) -> None:
        self.section("4. A concurrent modification, detected and retried")
        first = self.accounts.load("alice")
        second = self.accounts.load("alice")
        self.note(f"Two tellers load alice at version {first.version}.")
        second.deposit(Decimal("10.00"))
        self.accounts.save(second)
        self.note(f"Teller 2 deposits 10.00 and saves: version {second.version}.")
        first.withdraw(Decimal("40.00"))
        try:
            self.accounts.save(first)
        except ConcurrencyError as exc:
            self.note(f"Teller 1 withdraws 40.00 and saves: ConcurrencyError\n  {exc}")
        self.out.print()
        self.note(
            "The standard answer is accounts.execute(id, command): it reloads and runs the "
            "command again. Here another deposit sneaks in during its first attempt:"
        )
        attempts: list[int] = []

        def withdraw(account: BankAccount) -> None:
            attempts.append(account.version)
            if len(attempts) == 1:
                sneaky = self.accounts.load("alice")
                sneaky.deposit(Decimal("5.00"))
                self.accounts.save(sneaky)
            account.withdraw(Decimal("40.00"))

        self.accounts.execute("alice", withdraw, retries=3)
        final = self.store.stream_version("bankaccount-alice")
        table = Table("Attempt", "Loaded at", "Outcome", title_justify="left")
        for number, loaded in enumerate(attempts, start=1):
            outcome = (
                f"saved as version {final}"
                if number == len(attempts)
                else f"conflict: the stream moved to version {attempts[number]}; reload"
            )
            table.add_row(str(number), f"version {loaded}", outcome)
        self.out.print(table)

    # -- 5 -------------------------------------------------------------------------------------

    def look_back(self) -> None:
        self.section("5. Temporal queries: the past, by time and by version")
        when = self.before_tellers
        then = self.accounts.load("alice", as_of=when)
        now = self.accounts.load("alice")
        early = self.accounts.load("alice", at_version=2)
        self.note(f"The tellers of step 4 came after {clock(when)}. What did alice hold?")
        queries = Table("Query", "Version", "Balance", title_justify="left")
        for query, account in (
            (f'accounts.load("alice", as_of=<{clock(when)}>)', then),
            ('accounts.load("alice", at_version=2)', early),
            ('accounts.load("alice")', now),
        ):
            queries.add_row(query, str(account.version), money(account.balance))
        self.out.print(queries)
        table = Table(
            "Ver",
            "Recorded at",
            "Event",
            "Amount",
            "Balance after",
            title="history('alice')",
            title_justify="left",
        )
        for entry in self.accounts.history("alice"):
            amount = getattr(entry.event, "amount", None)
            table.add_row(
                str(entry.version),
                clock(entry.recorded_at),
                type(entry.event).__name__,
                money(amount) if isinstance(amount, Decimal) else "",
                money(entry.state.balance),
            )
        self.out.print(table)

    # -- 6 -------------------------------------------------------------------------------------

    def snapshots(self) -> None:
        self.section("6. Snapshots kick in")
        every = BankAccount.__snapshot_every__
        self.note(
            f"BankAccount.__snapshot_every__ = {every}: after a save, a snapshot is written "
            f"once {every} events have been added since the last one. carol gets 120 deposits "
            "of 1.00, 20 per save:"
        )
        carol = self.accounts.create("carol")
        carol.open(owner="Carol")
        self.accounts.save(carol)
        stream = self.accounts.stream_id("carol")
        table = Table("Save", "Version", "Latest snapshot", "A load replays", title_justify="left")
        for number in range(1, 7):
            for _ in range(20):
                carol.deposit(Decimal("1.00"))
            self.accounts.save(carol)
            snapshot = self.store.load_snapshot(stream)
            at = snapshot.version if snapshot else 0
            table.add_row(
                str(number),
                str(carol.version),
                f"version {at}" if at else "-",
                plural(carol.version - at, "event"),
            )
        self.out.print(table)
        loaded = self.accounts.load("carol")
        self.note(
            f"Loaded carol: balance {money(loaded.balance)} at version {loaded.version}, from "
            "the snapshot, without replaying its events. Snapshots are a cache: "
            f"'eventkeep {SNAPSHOTS_REBUILD}' deletes and rewrites them."
        )

    # -- 7 -------------------------------------------------------------------------------------

    def upcast(self) -> None:
        self.section("7. Events from an older release, upcast on read")
        self.note(
            "Release 1 stored Deposited without a currency (schema version 1) and called "
            "the opening event bank.Opened. Such events are appended here as they were "
            "written:"
        )
        bob = self.store.stream_version("bankaccount-bob")
        self.store.append(
            "bankaccount-bob",
            [RawEvent("bank.Deposited", {"amount": "25.00"}, schema_version=1)],
            expected_version=bob,
        )
        self.store.append(
            "bankaccount-dave",
            [RawEvent("bank.Opened", {"owner": "Dave"}, schema_version=1)],
            expected_version=0,
        )
        table = Table("Stored as", "Read as", title_justify="left")
        for stream, version in (("bankaccount-bob", bob + 1), ("bankaccount-dave", 1)):
            for recorded in self.store.read_stream(stream, version, version):
                event = recorded.event
                table.add_row(
                    f"{recorded.type} v{recorded.schema_version}\n"
                    f"{recorded.revealed_data.decode()}",
                    _describe(event),
                )
        self.out.print(table)
        self.note(
            "Deposited (now at schema version 2) declares @upcasts(1), which adds "
            "currency='EUR'; AccountOpened lists 'bank.Opened' in __aliases__. The stored "
            "bytes are never rewritten. bob's balance now includes the old deposit: "
            f"{money(self.accounts.load('bob').balance)}."
        )

    # -- 8 -------------------------------------------------------------------------------------

    def two_styles(self) -> None:
        self.section("8. The same streams, through the decider")
        deciders = Repository(self.store, account_decider)
        table = Table(
            "Account", "Owner", "Version", "BankAccount", "account_decider", title_justify="left"
        )
        for account_id in self.accounts.ids():
            account = self.accounts.load(account_id)
            decided = deciders.load(account_id)
            table.add_row(
                account_id,
                account.owner,
                str(account.version),
                money(account.balance),
                money(decided.state.balance),
            )
        self.out.print(table)

    # -- 9 -------------------------------------------------------------------------------------

    def verify(self) -> None:
        self.section("9. verify: is the stored history intact?")
        report = self.store.verify()
        if report.ok:
            self.note(
                f"verify passed: {plural(report.events_checked, 'event')} in "
                f"{plural(report.streams_checked, 'stream')} checked, every hash chain intact."
            )
        else:  # pragma: no cover - a fresh store is intact
            self.note(f"verify FAILED: {report.broken}")

    # -- 10 ------------------------------------------------------------------------------------

    def read_models(self) -> None:
        from eventkeep.cli.demo_projections import show_read_models

        self.section("10. Read models and a transfer reactor")
        show_read_models(self.store, self.out, self.note)


def _describe(event: object) -> str:
    if isinstance(event, Deposited):
        return f"Deposited(amount={event.amount}, currency={event.currency!r})"
    if isinstance(event, AccountOpened):
        return f"AccountOpened(owner={event.owner!r}, currency={event.currency!r})"
    if isinstance(event, Withdrawn):
        return f"Withdrawn(amount={event.amount})"
    return repr(event)
