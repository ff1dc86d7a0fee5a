"""The operator's tools: ``projections run`` imports from the current directory, and
``projections show`` prints a SQL read model's rows (a table, or JSON for scripts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from projection_harness import SRC

from eventkeep import EventStore, RawEvent
from eventkeep.cli import main

SHOP = textwrap.dedent(
    """
    from eventkeep import RawEvent
    from eventkeep.projections import HandlerContext, SQLProjection, handles

    class CartTotals(SQLProjection):
        name = "shop.cart_totals"
        tables = ("cart_totals",)
        schema = ("CREATE TABLE {cart_totals} (cart TEXT PRIMARY KEY, cents INTEGER)",)

        @handles("ItemAdded")
        def added(self, event: RawEvent, ctx: HandlerContext) -> None:
            ctx.execute(
                "INSERT INTO {cart_totals} VALUES (?, ?) ON CONFLICT (cart) "
                "DO UPDATE SET cents = {cart_totals}.cents + excluded.cents",
                (ctx.recorded.stream_id, event.data["cents"]),
            )
    """
)


def test_run_imports_a_projection_from_the_current_directory_and_show_prints_its_rows(
    sql_url: str, sql_store: EventStore, tmp_path: Path
) -> None:
    (tmp_path / "shop.py").write_text(SHOP)
    sql_store.append("cart-1", [RawEvent("ItemAdded", {"cents": 250})] * 2)
    sql_store.append("cart-2", [RawEvent("ItemAdded", {"cents": 99})])
    # The installed ``eventkeep`` script does not put the current directory on sys.path
    # (``python -m`` does): -P runs the module the same way.
    command = [sys.executable, "-P", "-m", "eventkeep", "--store", sql_url, "projections"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [*command, "run", "shop:CartTotals", "--until-caught-up", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    cli = CliRunner()
    result = cli.invoke(
        main, ["--store", sql_url, "projections", "show", "shop.cart_totals", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output), key=lambda r: r["cart"]) == [
        {"cart": "cart-1", "cents": 500},
        {"cart": "cart-2", "cents": 99},
    ]
    result = cli.invoke(
        main,
        ["--store", sql_url, "projections", "show", "shop.cart_totals", "--limit", "1"],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    assert "cart" in result.output
    assert "cents" in result.output
    assert "1 row shown (--limit 1)" in result.output
    result = cli.invoke(main, ["--store", sql_url, "projections", "show", "nobody"])
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
