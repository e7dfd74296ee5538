"""The `titan` command line: `titan run|backtest|data|features ...`."""

from __future__ import annotations

from titan.cli import data as data_commands
from titan.cli.common import app

app.add_typer(data_commands.app, name="data")
# Importing these modules registers their commands on `app`.
from titan.cli import backtest as _backtest  # noqa: E402,F401
from titan.cli import features as _features  # noqa: E402,F401
from titan.cli import ops as _ops  # noqa: E402,F401
from titan.cli import run as _run  # noqa: E402,F401
from titan.cli import train as _train  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app(prog_name="titan")


if __name__ == "__main__":  # pragma: no cover
    main()
