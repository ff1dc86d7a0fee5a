"""The web console in headless Chromium (Debian's package, driven by Playwright): an appended
event arrives live, an aggregate is time-travelled, a failed projection is retried; every page
is saved as a screenshot, an artifact of the run, in ``test-artifacts/console/`` (or the folder
``$EVENTKEEP_SCREENSHOTS`` names: ``EVENTKEEP_SCREENSHOTS=docs/img`` refreshes the docs' ones on
purpose). A test run never rewrites the committed files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from http_harness import RunningServer
from playwright.sync_api import Page, expect, sync_playwright

import eventkeep
from eventkeep.examples.bank.account import BankAccount
from eventkeep.projections import HandlerContext, Projection, RetryPolicy, Runner, handles
from eventkeep.projections.checkpoints import ProjectionRecord

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(
    os.environ.get("EVENTKEEP_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
)


class Ledger(Projection):
    """Fails on a Poison event while ``broken`` is set."""

    name = "console.ledger"
    broken = True

    @handles("Deposited", "Poison")
    def handle(self, event: Any, ctx: HandlerContext) -> None:
        if type(self).broken and getattr(event, "type", "") == "Poison":
            raise ValueError("cannot handle a Poison event")


@pytest.fixture
def console(sqlite_store: eventkeep.EventStore) -> Iterator[tuple[RunningServer, Page]]:
    accounts = eventkeep.Repository(sqlite_store, BankAccount)
    account = accounts.create("alice")
    account.open("Alice Liddell")
    account.deposit(Decimal("100.00"), reference="salary")
    account.withdraw(Decimal("30.00"), reference="rent")
    account.deposit(Decimal("12.50"))
    accounts.save(account)
    sqlite_store.append("orders-17", [eventkeep.RawEvent("OrderPlaced", {"items": 3})])
    sqlite_store.append("audit", [eventkeep.RawEvent("Poison", {"why": "a bad row"})])
    Ledger.broken = True
    runner = Runner(sqlite_store, [Ledger()], retry=RetryPolicy(max_retries=0))
    runner.run(until_caught_up=True, stop_on_failure=True, timeout=30)
    server = RunningServer(sqlite_store, aggregates={"BankAccount": BankAccount}, heartbeat=1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        errors: list[str] = []  # script errors and CSP refusals; not answers like a 401
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        page.goto(server.url + "/")
        page.fill("#token-input", server.tokens["admin"])
        page.press("#token-input", "Enter")  # commits the value: a change event
        expect(page.locator("#token-state")).to_have_text("token accepted")
        try:
            yield server, page
            assert errors == []
        finally:
            browser.close()
            server.stop()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=False)


def test_an_event_appended_elsewhere_arrives_live_in_the_console(
    console: tuple[RunningServer, Page],
) -> None:
    server, page = console
    page.goto(server.url + "/#/log")
    expect(page.locator("#live-text")).to_have_text("live")
    server.store.append("orders-18", [eventkeep.RawEvent("OrderPlaced", {"items": 1})])
    expect(page.locator("#log-rows tr[data-position]").first).to_contain_text("orders-18")
    page.fill("#append-stream", "orders-18")
    page.fill("#append-type", "OrderShipped")
    page.fill("#append-data", '{"carrier": "DHL"}')
    page.click("#append-form button")
    expect(page.locator("#log-rows tr[data-position]").first).to_contain_text("OrderShipped")
    assert [e.type for e in server.store.read_stream("orders-18")] == [
        "OrderPlaced",
        "OrderShipped",
    ]
    page.locator("#log-rows tr[data-position]").first.click()
    expect(page.locator("#log-rows tr.detail").first).to_contain_text("DHL")
    shot(page, "live-log")


def test_streams_are_searched_and_a_streams_events_shown(
    console: tuple[RunningServer, Page],
) -> None:
    server, page = console
    page.goto(server.url + "/#/streams")
    page.fill("#search", "bank")
    # Rows of streams only: the "Loading…" placeholder is a row too, and the first list
    # (every stream) may arrive before the search's.
    expect(page.locator("#stream-rows tr[data-stream]")).to_have_count(1)
    expect(page.locator("#stream-rows")).to_contain_text("bankaccount-alice")
    shot(page, "streams")
    page.click('#stream-rows tr[data-stream="bankaccount-alice"]')
    expect(page.locator("#event-rows tr[data-position]")).to_have_count(4)
    page.locator("#event-rows tr[data-position]").nth(1).click()
    expect(page.locator("#event-rows tr.detail").nth(1)).to_contain_text("salary")
    shot(page, "stream")


def test_time_travel_shows_the_state_at_a_version_and_what_its_event_changed(
    console: tuple[RunningServer, Page],
) -> None:
    server, page = console
    page.goto(server.url + "/#/travel")
    page.select_option("#travel-type", "BankAccount")
    page.fill("#travel-id", "alice")
    page.click("#travel-form button")
    expect(page.locator("#tt-version")).to_have_text("v4 / 4")
    expect(page.locator("#tt-state")).to_contain_text("82.50")
    page.click("#tt-timeline button[data-v='3']")
    expect(page.locator("#tt-version")).to_have_text("v3 / 4")
    expect(page.locator("#tt-state")).to_contain_text("70.00")
    balance = page.locator("#tt-diff tr.changed", has_text="balance")
    expect(balance).to_contain_text('"100.00"')
    expect(balance).to_contain_text('"70.00"')
    shot(page, "time-travel")


def test_a_failed_projection_is_retried_from_the_console(
    console: tuple[RunningServer, Page],
) -> None:
    server, page = console
    page.goto(server.url + "/#/projections")
    card = page.locator("[data-projection='console.ledger']")
    expect(card).to_contain_text("failed")
    expect(card).to_contain_text("cannot handle a Poison event")
    shot(page, "projections")
    record = _record(server.store)
    assert record.retry_at == -1  # waiting for an operator
    page.click("[data-projection='console.ledger'] button[data-action='retry']")
    expect(page.locator("#toasts")).to_contain_text("retry of console.ledger requested")
    assert _record(server.store).retry_at == 0
    Ledger.broken = False  # the fix is deployed; the runner retries at once
    Runner(server.store, [Ledger()]).run(until_caught_up=True, timeout=30)
    page.click("#proj-refresh")
    expect(card).not_to_contain_text("failed", timeout=10_000)
    expect(card.locator("td").nth(2)).to_have_text("0")  # no lag: the poison event handled


def test_verify_and_tokens_pages(console: tuple[RunningServer, Page]) -> None:
    server, page = console
    page.goto(server.url + "/#/verify")
    page.click("#verify-run")
    expect(page.locator(".verdict")).to_contain_text("History intact")
    shot(page, "verify")
    page.goto(server.url + "/#/tokens")
    page.fill("#tok-name", "billing")
    page.select_option("#tok-scope", "append")
    page.fill("#tok-prefixes", "invoice-")
    page.click("#token-create button")
    expect(page.locator("#tok-secret-value")).to_contain_text("ekt_")
    expect(page.locator("#tok-rows")).to_contain_text("billing")
    shot(page, "tokens")


def _record(store: eventkeep.EventStore) -> ProjectionRecord:
    import msgspec

    records, _ = store.projection_state()
    data = dict(records)["console.ledger"]
    return msgspec.json.decode(data, type=ProjectionRecord)


assert os.path.exists(CHROMIUM), "install Debian's chromium package (./scripts/check does)"
