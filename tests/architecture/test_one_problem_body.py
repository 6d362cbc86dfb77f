"""One problem body: the answers written below FastAPI (the body-size limit, the last-resort 500)
are built by the one builder, `coop.problems.problem_body` (`coop.errors` re-exports it), and
send the same bytes they always did."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from coop import errors, problems
from coop.bodysize import _problem
from coop.observability import internal_error_body

ROOT = Path(__file__).resolve().parents[2]


def test_the_answers_below_fastapi_keep_their_bytes() -> None:
    assert (
        _problem(4096)
        == json.dumps(
            {
                "type": "payload_too_large",
                "title": "Payload too large",
                "status": 413,
                "detail": "The request body is larger than the limit of 4096 bytes",
            }
        ).encode()
    )
    assert internal_error_body("abc") == {
        "type": "internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "Something went wrong on our side; quote the correlation id when reporting it.",
        "correlation_id": "abc",
    }
    assert errors.problem_body is problems.problem_body


def test_no_module_of_the_kernel_writes_a_problem_body_by_hand() -> None:
    """A dict literal with a problem's four members is one built by hand (the OpenAPI schema
    that describes them, whose members are schemas, is not)."""
    by_hand = []
    for path in sorted((ROOT / "coop").rglob("*.py")):
        if path.name == "problems.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                members = {
                    k.value: v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant)
                }
                if {"type", "title", "status", "detail"} <= set(members) and not isinstance(
                    members["status"], ast.Dict
                ):
                    by_hand.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert by_hand == []
