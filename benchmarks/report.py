"""Write one benchmark's figures into its own section of BENCHMARKS.md.

Each benchmark owns a section delimited by HTML comments, so re-running one benchmark
replaces its figures and leaves the others alone.
"""

from __future__ import annotations

import fcntl
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures measured by the scripts in `benchmarks/`; each section names the command that\n"
    "reproduces it. Timings on these 2-core machines vary with load: compare figures only\n"
    "within one run.\n"
)


def machine_line() -> str:
    """One line describing where and when the figures were taken."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = platform.python_version()
    return f"_Measured {when} on {platform.machine()}, {os.cpu_count()} CPUs, Python {python}._"


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section `name` of BENCHMARKS.md with `body`."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = path.read_text() if path.exists() else HEADER
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            text = head + block + tail
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        path.write_text(text)
