"""The built distributions carry what an installed service needs at run time besides the code:
every domain's migrations (`python -m server migrate` and `serve` apply them from the installed
packages), the Alembic environment and its template, the founding agreement, the service area.
The wheel and the sdist are built here with the project's own build backend (PEP 517), from a
copy of the sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the wheel ships; devtools/ (local servers, the process manager, the demo) and loadtests/
# run from a checkout and are copied too, to show that they stay out.
SHIPPED = ("coop", "riders", "drivers", "reputation", "bargaining", "dispatch", "pay", "server")
PACKAGES = (*SHIPPED, "devtools", "loadtests")
# The build's own throw-aways and the checkout's caches are not sources.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def migration_files() -> list[str]:
    """Every file of every migrations folder of the sources (`*/migrations/`, `versions/` in
    it included), as a path relative to the project's root."""
    found = sorted(
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for folder in (ROOT / package).rglob("migrations")
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """The names in the wheel and in the sdist (without its top folder)."""
    source = tmp_path_factory.mktemp("source")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    script = (  # the backend logs on stdout: the names of what it built go to a file
        "import sys\n"
        "from pathlib import Path\n"
        "from setuptools import build_meta\n"
        "out = sys.argv[1]  # the backend rewrites sys.argv\n"
        "wheel = build_meta.build_wheel(out)\n"
        "sdist = build_meta.build_sdist(out)\n"
        "Path(out, 'built.txt').write_text(wheel + '\\n' + sdist)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    wheel_name, sdist_name = (out / "built.txt").read_text().split()
    with zipfile.ZipFile(out / wheel_name) as wheel:
        in_wheel = set(wheel.namelist())
    with tarfile.open(out / sdist_name) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    return in_wheel, in_sdist


def test_the_build_backend_is_the_declared_one() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    [requirement] = [r for r in declared if r.startswith("setuptools")]
    minimum = tuple(int(part) for part in requirement.split(">=")[1].split(",")[0].split("."))
    version = metadata.version("setuptools")
    installed = tuple(int(part) for part in version.split(".")[: len(minimum)])
    assert installed >= minimum, (version, requirement)


def test_every_migrations_folder_is_in_the_wheel_and_the_sdist(
    built: tuple[set[str], set[str]],
) -> None:
    in_wheel, in_sdist = built
    expected = migration_files()
    # Every domain's folder, and core's environment with its versions folder, are among them.
    for folder in (
        "coop/migrations/versions/",
        "riders/migrations/",
        "dispatch/migrations/",
        "pay/migrations/",
        "drivers/migrations/",
        "bargaining/migrations/",
        "reputation/migrations/",
    ):
        assert any(name.startswith(folder) for name in expected), folder
    assert "coop/migrations/env.py" in expected
    assert "coop/migrations/script.py.mako" in expected
    assert [name for name in expected if name not in in_wheel] == []
    assert [name for name in expected if name not in in_sdist] == []


def test_the_other_files_read_at_run_time_are_in_the_wheel(
    built: tuple[set[str], set[str]],
) -> None:
    in_wheel, _ = built
    for name in (
        "bargaining/founding_agreement.yaml",
        "coop/data/montreal.geojson",
        "coop/data/jurisdictions/quebec.yaml",
        "coop/data/jurisdictions/none.yaml",
        "server/web/templates/base.html",
        # docs/guides/, linked into the package: the /guide pages read them.
        "server/web/guides/rider.fr.md",
        "server/web/guides/operator.en.md",
    ):
        assert name in in_wheel, name
    assert not any("__pycache__" in name for name in in_wheel)


def test_the_wheel_ships_the_layers_and_no_development_tooling(
    built: tuple[set[str], set[str]],
) -> None:
    in_wheel, _ = built
    top = {name.split("/", 1)[0] for name in in_wheel if "/" in name and ".dist-info" not in name}
    assert top == set(SHIPPED)
