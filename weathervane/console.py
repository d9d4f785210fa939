"""The terminal every command prints to, and its table: a leaf module, so commands import it without importing
the CLI that registers them."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def print_table(title: str, columns: list[str], rows: list) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*[escape(str(v)) for v in row])  # values come from files and the ledger
    console.print(table)
