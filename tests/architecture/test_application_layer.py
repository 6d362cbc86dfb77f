"""The pages are adapters over the application layer, never over the API's routes.

A page that calls a route function wires the route's dependencies by hand, so a check added to
the route's dependencies is silently skipped on the page's path. The pages call the domains'
`application` modules instead; this test fails if any module under `server/web` imports a
`*.router` module, in any of the three ways Python allows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "server" / "web"


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def router_imports(source: str) -> list[str]:
    """Every `*.router` module `source` imports: `import a.router`, `from a.router import f`
    and `from a import router` (when `a.router` is a module, not a name inside `a`)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.endswith(".router")]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module.endswith(".router") or node.module == "router":
                found.append(node.module)
                continue
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if alias.name == "router" and _is_module(dotted):
                    found.append(dotted)
    return found


def test_no_module_under_server_web_imports_a_router() -> None:
    offenders = {
        str(path.relative_to(ROOT)): imported
        for path in sorted(WEB.rglob("*.py"))
        if (imported := router_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"pages must call the application layer, not routes: {offenders}"


@pytest.mark.parametrize(
    "line",
    [
        "from reputation import router as reputation_routes",
        "from bargaining import router",
        "import pay.router",
        "import dispatch.trips.router as trip_routes",
        "from pay.router import read_receipt",
        "def f():\n    from reputation.router import my_ratings\n",
    ],
)
def test_the_check_finds_each_way_of_importing_a_router(line: str) -> None:
    # The check can fail: the imports pages.py used to make, and their other spellings.
    assert router_imports(line)


@pytest.mark.parametrize(
    "line",
    [
        "from reputation import application",
        "from server.web.pages.common import page_router",
        "from fastapi import APIRouter",
        "router = page_router()",
    ],
)
def test_the_check_passes_what_is_not_a_router_module(line: str) -> None:
    assert router_imports(line) == []


def test_a_page_that_imports_a_router_is_found() -> None:
    """The scan of the tree sees a page module written with a route import."""
    page = WEB / "pages" / "me.py"
    source = page.read_text(encoding="utf-8")
    broken = source.replace(
        "from pay import application as pay_app",
        "from pay import application as pay_app\nfrom pay import router as pay_routes",
    )
    assert broken != source
    assert router_imports(broken) == ["pay.router"]


# server/web/ops.py (the live map's event stream) keeps its own feed on the state; its reads
# are its owner's to type.
UNTYPED_STATE_ALLOWED = {"server/web/ops.py"}


def untyped_state_reads(source: str) -> list[str]:
    """Every `app.state.x` (or `request.app.state.x`, `self.app.state.x`) in `source`: the
    pages read the state typed, with `state_of(app, CoreState)` or a domain's part."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)):
            continue
        state = node.value
        if state.attr != "state":
            continue
        owner = state.value
        if (isinstance(owner, ast.Name) and owner.id == "app") or (
            isinstance(owner, ast.Attribute) and owner.attr == "app"
        ):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_the_pages_read_the_state_typed() -> None:
    offenders = {
        name: reads
        for path in sorted(WEB.rglob("*.py"))
        if (name := str(path.relative_to(ROOT))) not in UNTYPED_STATE_ALLOWED
        and (reads := untyped_state_reads(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"read the state with state_of(app, ...): {offenders}"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("request.app.state.reputation_policy_source", 1),
        ("app.state.settings.map_tiles_url", 1),
        ("self.app.state.sessionmaker()", 1),
        ("state_of(request.app, CoreState).settings", 0),
        ("request.state.viewer", 0),
    ],
)
def test_the_state_check_finds_untyped_reads(source: str, found: int) -> None:
    assert len(untyped_state_reads(source)) == found
