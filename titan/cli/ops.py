"""`titan stats`, `titan health` and `titan logs`: what operators run next to the daemon."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.table import Table

from titan.cli.common import ConfigOption, SetOption, app, console, load_or_exit, parse_overrides
from titan.clock import LiveClock
from titan.config import TitanConfig
from titan.ops.health import default_max_age_s, judge
from titan.ops.runtime import ops_config
from titan.ops.stats import persisted_stats, read_json

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _health_path(config: TitanConfig) -> Path:
    return Path(config.runtime.state_dir) / ops_config(config).health.file


def _when(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return str(value if value is not None else "-")
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------ titan stats


@app.command("stats")
def stats_command(
    config: ConfigOption = None, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """Persisted state: per-symbol decisions and positions, PnL, fusion, models, feed."""
    settings = load_or_exit(config, parse_overrides(overrides))
    state_dir = Path(settings.runtime.state_dir)
    data = persisted_stats(
        state_dir,
        _health_path(settings),
        settings.trading.starting_cash,
        settings.models.enabled,
        settings.training.registry.dir,
    )
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    if data["ledger"] is None:
        console.print(f"no ledger in {state_dir}: the daemon has not run with this state_dir")
        raise typer.Exit(1)
    _print_stats(data, settings)


def _print_stats(data: Mapping[str, Any], settings: TitanConfig) -> None:
    ledger, health = data["ledger"], data["health"] or {}
    console.print(
        f"[bold]{settings.mode}[/bold] state {data['state_dir']}: status "
        f"{health.get('status', 'unknown')}, health written {_when(health.get('updated_at'))}"
    )
    console.print(_symbols_table(ledger["symbols"]))
    _print_account(ledger["account"], health.get("trading") or {})
    _print_fusion(ledger["fusion"])
    models = health.get("models") or list(settings.models.enabled)
    console.print(f"models: {', '.join(models)}")
    if data["model_versions"]:
        console.print(_registry_table(data["model_registry"], data["model_versions"]))
    else:
        console.print(f"model registry: no versions in {data['model_registry']}")
    console.print(_checkpoints_table(data["checkpoints"]))
    for title in ("feed", "mqtt"):
        if health.get(title):
            console.print(_mapping_table(title, health[title]))


def _symbols_table(symbols: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="symbols")
    table.add_column("symbol", no_wrap=True)
    for name in ("last candle (UTC)", "decisions", "hit rate", "last", "position", "uPnL", "fills"):
        table.add_column(name)
    for name, row in sorted(symbols.items()):
        last = row.get("last_decision") or {}
        position = row.get("position")
        held = "-" if not position else f"{position['quantity']:.6g} @ {position['avg_price']:.6g}"
        table.add_row(
            name,
            _when(row.get("last_candle_ts")),
            str(row.get("decisions", 0)),
            _num(row.get("hit_rate")),
            f"{last.get('action', '-')} p={_num(last.get('prob_up'), 3)}",
            held,
            _num(None if not position else position["unrealized_pnl"], 2),
            str(row.get("fills", 0)),
        )
    return table


def _print_account(account: Mapping[str, Any], trading: Mapping[str, Any]) -> None:
    state = account.get("state") or {}
    console.print(
        f"equity {_num(account.get('equity'), 2)}  PnL {_num(account.get('pnl'), 2)}  "
        f"realised {_num(state.get('realized_pnl'), 2)}  fees {_num(state.get('fees_paid'), 2)}  "
        f"trades {state.get('trade_count', 0)}  win rate {_num(state.get('win_rate'))}  "
        f"killed {state.get('killed', trading.get('killed', False))}  "
        f"paused {trading.get('paused', '-')}"
    )


def _print_fusion(fusion: Mapping[str, Any] | None) -> None:
    if not fusion:
        console.print("fusion: no statistics stored yet")
        return
    keys = ("samples_seen", "train_steps", "train_loss", "val_loss", "best_val_loss",
            "current_lr", "is_overfitting", "early_stops", "active", "fallback_reason")  # fmt: skip
    console.print(_mapping_table(f"fusion @ {_when(fusion.get('ts'))}", fusion, keys))
    attention = fusion.get("attention") or {}
    if attention:
        console.print(_mapping_table("attention weights", attention))


def _mapping_table(
    title: str, values: Mapping[str, Any], keys: Iterable[str] | None = None
) -> Table:
    table = Table("key", "value", title=title)
    for key in keys or sorted(values):
        value = values.get(key)
        table.add_row(
            key, json.dumps(value, default=str) if isinstance(value, dict) else _num(value, 6)
        )
    return table


def _registry_table(root: str, versions: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table("model", "version", "trained (UTC)", "code", "parameters", "stored",
                  title=f"model registry {root} (newest version per model)")  # fmt: skip
    for name, row in versions.items():
        table.add_row(
            name,
            _num(row.get("version")),
            _when(row.get("created_ms")),
            str(row.get("code_version") or "-"),
            _num(row.get("parameters")),
            str(row.get("stored_versions", 0)),
        )
    return table


def _checkpoints_table(checkpoints: list[Mapping[str, Any]]) -> Table:
    table = Table("checkpoint", "written (UTC)", "fusion sha256", "fusion samples",
                  title="model versions (newest checkpoints)")  # fmt: skip
    for row in checkpoints:
        table.add_row(
            row["name"],
            _when(row.get("written_at")),
            str(row.get("fusion_sha256")),
            str(row.get("fusion_samples_seen")),
        )
    return table


# ------------------------------------------------------------------ titan health


@app.command("health")
def health_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    file: Annotated[Path | None, typer.Option(help="Health file (default: from config).")] = None,
    max_age: Annotated[
        float | None, typer.Option(help="Stale after this many seconds (default: config).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Exit 0 when the daemon is running and fresh, 1 when stale or stopped, 2 when unknown."""
    settings = load_or_exit(config, parse_overrides(overrides))
    path = file or _health_path(settings)
    document = read_json(path)
    limit = max_age or ops_config(settings).health.max_age_s
    if limit is None and document is None:
        limit = default_max_age_s(settings.data.timeframe)
    verdict = judge(document, LiveClock().now_ms(), limit)
    if as_json:
        print(json.dumps({"ok": verdict.ok, "reason": verdict.reason, "status": verdict.status,
                          "age_s": verdict.age_s, "file": str(path)}))  # fmt: skip
    else:
        label = "healthy" if verdict.ok else "UNHEALTHY"
        print(f"{label}: {verdict.reason} (status {verdict.status}, file {path})")
    if document is None:
        raise typer.Exit(2)
    raise typer.Exit(0 if verdict.ok else 1)


# ------------------------------------------------------------------ titan logs


@dataclass(frozen=True)
class LogFilter:
    """Which JSON log events to keep: symbols, event-name globs, minimum level."""

    symbols: frozenset[str] = frozenset()
    events: tuple[str, ...] = ()
    min_level: int = 0

    def matches(self, event: Mapping[str, Any]) -> bool:
        name = str(event.get("event", ""))
        if self.events and not any(fnmatch(name, pattern) for pattern in self.events):
            return False
        if LEVELS.get(str(event.get("level", "")).lower(), 0) < self.min_level:
            return False
        return not self.symbols or bool(self.symbols & _symbols_of(event))


def _symbols_of(event: Mapping[str, Any]) -> set[str]:
    """The symbols an event is about: `symbol`, or the keys of `decisions` (interval events)."""
    found = {str(event["symbol"])} if "symbol" in event else set()
    decisions = event.get("decisions")
    if isinstance(decisions, dict):
        found.update(decisions)
    return found


def parse_line(line: str) -> dict[str, Any] | None:
    """The JSON object in a log line; tolerates a journald/syslog prefix before the `{`."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        event = json.loads(line[start:])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def follow(path: Path, poll_s: float = 0.25, keep_going: Callable[[], bool] = lambda: True,
           ) -> Iterator[str]:  # fmt: skip
    """Lines of `path`, then new ones as they are written (`tail -F`: survives rotation)."""
    handle = path.open("rb")
    partial = b""
    try:
        while True:
            chunk = handle.readline()
            if chunk:
                partial += chunk
                if partial.endswith(b"\n"):
                    yield partial.decode("utf-8", "replace")
                    partial = b""
                continue
            if not keep_going():
                return
            time.sleep(poll_s)
            if _rotated(path, handle):
                handle.close()
                handle, partial = path.open("rb"), b""
    finally:
        handle.close()


def _rotated(path: Path, handle: IO[bytes]) -> bool:
    try:
        current = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return current.st_ino != opened.st_ino or current.st_size < handle.tell()


def render(event: Mapping[str, Any]) -> str:
    head = [str(event.get(k, "")) for k in ("timestamp", "level", "event")]
    rest = " ".join(
        f"{k}={json.dumps(v, default=str)}"
        for k, v in event.items()
        if k not in ("timestamp", "level", "event")
    )
    return f"{head[0]} {head[1]:<7} {head[2]:<22} {rest}"


@app.command("logs")
def logs_command(
    source: Annotated[
        str | None, typer.Argument(help="JSON-lines log file, or - for stdin (journalctl -o cat).")
    ] = None,
    config: ConfigOption = None,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep reading.")] = False,
    symbol: Annotated[list[str] | None, typer.Option(help="Keep these symbols.")] = None,
    event: Annotated[list[str] | None, typer.Option(help="Event name or glob.")] = None,
    level: Annotated[str, typer.Option(help="Minimum level.")] = "debug",
    pretty: Annotated[bool, typer.Option(help="One readable line per event.")] = False,
) -> None:
    """Filter the daemon's JSON log stream by symbol, event and level (file, stdin)."""
    if level.lower() not in LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LEVELS)}", param_hint="--level")
    lines = _log_source(source, config, follow_)
    wanted = LogFilter(frozenset(symbol or ()), tuple(event or ()), LEVELS[level.lower()])
    try:
        for line in lines:
            parsed = parse_line(line)
            if parsed is not None and wanted.matches(parsed):
                print(render(parsed) if pretty else json.dumps(parsed), flush=follow_)
    except (KeyboardInterrupt, BrokenPipeError):
        return


def _log_source(source: str | None, config: Path | None, follow_: bool) -> Iterable[str]:
    if source is None and config is not None:
        file = load_or_exit(config).logging.file
        source = None if file is None else str(file)
    if source in (None, "-"):
        return sys.stdin
    path = Path(str(source))
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint="SOURCE")
    return follow(path) if follow_ else path.open(encoding="utf-8", errors="replace")
