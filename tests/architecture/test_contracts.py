"""The import contracts of `.importlinter` hold, fail on a back-pointing import, and are drawn."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "coop",
    "riders",
    "drivers",
    "bargaining",
    "reputation",
    "dispatch",
    "pay",
    "server",
    "devtools",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The packages' sources and the contracts, copied where an import can be broken on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_tree_keeps_every_contract(tree_copy: Path) -> None:
    result = _lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("coop/db.py", "import drivers.models", "Layers"),
        ("riders/models.py", "import drivers.models", "Layers"),
        ("drivers/models.py", "import riders.models", "Layers"),
        ("drivers/models.py", "import bargaining.models", "Layers"),
        ("bargaining/models.py", "import reputation.models", "Layers"),
        ("reputation/models.py", "import dispatch.trips.models", "Layers"),
        ("dispatch/trips/models.py", "import server.app", "Layers"),
        ("dispatch/trips/models.py", "import pay.models", "Layers"),
        ("pay/models.py", "import server.all_models", "Layers"),
        ("server/app.py", "import devtools.processes", "Nothing shipped"),
        # Inside the dispatch domain: realtime > matching > trips > locations > states.
        ("dispatch/trips/push.py", "import dispatch.realtime.hub", "The dispatch domain"),
        ("dispatch/trips/service.py", "import dispatch.matching.matcher", "The dispatch domain"),
        ("dispatch/locations/ingest.py", "import dispatch.trips.models", "The dispatch domain"),
        ("dispatch/states.py", "import dispatch.locations.models", "The dispatch domain"),
        ("dispatch/matching/costs.py", "import dispatch.realtime.frames", "The dispatch domain"),
        # Modules of one package: the state names the pools' types, so they never import it.
        ("coop/db.py", "import coop.state", "No cycles"),
        ("coop/redis_client.py", "import coop.dependencies", "No cycles"),
        ("reputation/score.py", "import drivers.status", "Reputation never"),
    ],
)
def test_a_back_pointing_import_breaks_a_contract(
    tree_copy: Path, module: str, bad_import: str, contract: str
) -> None:
    path = tree_copy / module
    path.write_text(path.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    imported = bad_import.split()[1]
    # Layers name the module; a cycle is named relative to its package (".state -> .db").
    assert imported in broken or f".{imported.rsplit('.', 1)[1]}" in broken


def test_the_layer_diagram_is_drawn_from_the_contracts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "architecture_diagram.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
