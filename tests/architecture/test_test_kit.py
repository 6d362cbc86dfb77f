"""The suite keeps its kit in one place: shared helpers live in kit modules (`tests/builders.py`,
`tests/servers.py`, `tests/polling.py`, `tests/web/pages.py`, a folder's `helpers.py`), never
in a test module that another one imports, and there is one polling helper."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
POLLING_NAMES = {
    "until",
    "_until",
    "wait_until",
    "_wait_until",
    "_wait_for",
    "_wait_for_in_log",
    "wait_for_condition",
}


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_no_test_module_imports_another() -> None:
    offenders = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.rsplit(".", 1)[-1]
                if node.module.startswith("tests.") and last.startswith("test_"):
                    offenders.append(f"{path.relative_to(TESTS)} imports {node.module}")
    assert offenders == []


def test_one_polling_helper() -> None:
    """Waiting for something is `tests.polling.until` (or `until_sync`), not a local copy."""
    copies = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == "polling.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name in POLLING_NAMES
            ):
                copies.append(f"{path.relative_to(TESTS)}: {node.name}")
    assert copies == []
