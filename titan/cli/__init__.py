"""The `titan` command line: `titan run|backtest|data|features ...`."""

from __future__ import annotations

from titan.cli import data as data_commands
from titan.cli.common import app

app.add_typer(data_commands.app, name="data")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="titan")


if __name__ == "__main__":  # pragma: no cover
    main()
