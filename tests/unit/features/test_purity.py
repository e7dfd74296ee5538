"""titan.features is pure computation: no sockets, clocks, files or loggers."""

from __future__ import annotations

import ast
from pathlib import Path

import titan.features

FORBIDDEN_MODULES = {
    "asyncio", "datetime", "http", "io", "logging", "os", "pathlib", "requests", "shutil",
    "socket", "structlog", "subprocess", "sys", "tempfile", "threading", "time", "urllib",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval"}


def _sources() -> list[Path]:
    return sorted(Path(titan.features.__file__).parent.glob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _called_names(tree: ast.AST) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_feature_modules_import_no_io_clock_or_logging_module() -> None:
    for path in _sources():
        tree = ast.parse(path.read_text())
        assert not _imported_roots(tree) & FORBIDDEN_MODULES, path.name


def test_feature_modules_call_no_io_builtin() -> None:
    for path in _sources():
        assert not _called_names(ast.parse(path.read_text())) & FORBIDDEN_CALLS, path.name
