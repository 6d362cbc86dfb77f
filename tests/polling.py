"""The suite's one way to wait for something: poll a check until it holds, with a deadline, and
say what did not happen. A check may be a plain or an async callable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

Check = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def until(
    check: Check,
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    what: str = "the condition",
) -> None:
    """Waits for `check()` to hold, polling every `interval_s`, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(interval_s)


def until_sync(
    check: Callable[[], bool],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    what: str = "the condition",
) -> None:
    """`until` for a test that runs no event loop (a child process watched from outside)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(interval_s)


async def text_with(path: Path, needle: str, *, timeout_s: float = 10.0) -> str:
    """Waits until the file at `path` holds `needle` (a log being written); answers its text."""
    await until(
        lambda: needle in path.read_text(errors="replace"),
        timeout_s=timeout_s,
        interval_s=0.05,
        what=f"{needle!r} in {path.name}",
    )
    return path.read_text(errors="replace")
