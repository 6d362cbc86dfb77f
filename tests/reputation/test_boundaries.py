"""Pure checks over the code and the schema: no app, no database.

The register cannot drift from the models, and nothing in reputation/ can change a status.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import ForeignKey

import reputation
from reputation import data_register
from server.all_models import Base


def _reputation_sources() -> list[Path]:
    return sorted(Path(reputation.__file__).parent.rglob("*.py"))


def test_no_reputation_code_can_change_a_drivers_status() -> None:
    """A guard beside the behaviour: nothing in reputation/ names or writes a driver's status."""
    sources = _reputation_sources()
    assert len(sources) >= 10
    for path in sources:
        source = path.read_text()
        assert "DriverStatus" not in source, path
        assert "change_status" not in source, path
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module in {"drivers", "drivers.status"}:
                # The export reads recorded status decisions through `drivers.service`, read-only.
                names = {alias.name for alias in node.names}
                assert node.module != "drivers.status" and "status" not in names, (
                    f"{path}:{node.lineno}"
                )
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    assert not (isinstance(target, ast.Attribute) and target.attr == "status"), (
                        f"{path}:{node.lineno} assigns a .status"
                    )
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "update":
                first = node.args[0] if node.args else None
                assert getattr(first, "id", None) != "Driver", f"{path}:{node.lineno}"


# --- the data register ------------------------------------------------------------------------

PERSON_TABLES = {"rider", "driver"}


def test_every_column_of_every_table_is_declared() -> None:
    personal = data_register.personal_columns()
    not_personal = data_register.not_personal_columns()
    tables = {table.name: table for table in Base.metadata.sorted_tables}

    assert set(personal) | set(not_personal) >= set(tables), (
        "tables missing from reputation/data_register.py: "
        f"{sorted(set(tables) - set(personal) - set(not_personal))}"
    )
    assert set(personal) | set(not_personal) <= set(tables), "the register names unknown tables"
    for name, table in tables.items():
        columns = {column.name for column in table.columns}
        mine = personal.get(name, set())
        theirs = not_personal.get(name, set())
        named = (mine | theirs) - {data_register.ALL_COLUMNS}
        assert named <= columns, f"{name}: the register names unknown columns {named - columns}"
        assert not (mine & theirs), f"{name}: declared both personal and not personal"
        assert not (data_register.ALL_COLUMNS in mine and theirs), name
        if data_register.ALL_COLUMNS not in mine | theirs:
            assert columns <= mine | theirs, f"{name}: undeclared columns {columns - mine - theirs}"
        for column in table.columns:
            points_at_a_person = any(
                key.column.table.name in PERSON_TABLES for key in column.foreign_keys
            )
            if points_at_a_person or name in PERSON_TABLES:
                assert column.name in mine or data_register.ALL_COLUMNS in mine, (
                    f"{name}.{column.name} identifies a person: declare it in the register"
                )


def test_every_kind_says_where_how_long_and_who_reads() -> None:
    keys = [kind.key for kind in data_register.REGISTER]
    assert len(keys) == len(set(keys))
    for kind in data_register.REGISTER:
        assert kind.description and kind.purpose and kind.retention and kind.readers
        assert kind.stored and all(storage.describe() for storage in kind.stored)


def test_foreign_keys_are_what_the_register_test_relies_on() -> None:
    # The register test finds person references through foreign keys; the rating table has them.
    rating = Base.metadata.tables["reputation_rating"]
    keys = {key.column.table.name for column in rating.columns for key in column.foreign_keys}
    assert {"driver", "rider"} <= keys
    assert isinstance(next(iter(rating.c.driver_id.foreign_keys)), ForeignKey)


def test_the_register_page_is_generated_from_the_declaration() -> None:
    page = Path(reputation.__file__).parent.parent / "docs" / "data-register.md"
    assert page.read_text() == data_register.to_markdown(), (
        "regenerate it: python -m reputation.data_register > docs/data-register.md"
    )
