"""Finding a person by a part of their name, whatever its case and accents ("eloise" finds
"Éloïse"): one folding, applied the same way to the name in SQL and to what was typed in Python.

The folding is a character table (every Latin letter with a diacritic to its plain lower-case
letter, and A-Z to a-z) applied with PostgreSQL's built-in `translate`, not `lower()` nor the
`unaccent` extension: `lower()` follows the database's locale (under the C locale it leaves
"É" alone) and an extension is one more thing a deployment must install. The same table folds
the query here, so both sides always agree; letters outside the table (another script) are
compared as written. The database keeps the folded name of every rider and driver in a stored
generated column (`name_folded`, `fold_sql`, byte-ordered: `COLLATE "C"`), indexed with the id
for the search's order and its pages."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime


def _table() -> tuple[str, str]:
    source, target = [], []
    # Latin-1, Extended-A and -B, and Extended Additional (Vietnamese: "Nguyễn").
    for code in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        char = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base.isascii() and base.isalpha():
            source.append(char)
            target.append(base.lower())
    for code in range(ord("A"), ord("Z") + 1):
        source.append(chr(code))
        target.append(chr(code).lower())
    return "".join(source), "".join(target)


FOLD_FROM, FOLD_TO = _table()
_FOLD = str.maketrans(FOLD_FROM, FOLD_TO)


def fold(text: str) -> str:
    """`text` as the search compares it: accents off and lower case, for the Latin letters."""
    return text.translate(_FOLD)


def fold_sql(column_name: str) -> str:
    """`fold` as the SQL of a stored generated column over `column_name` (riders' and drivers'
    `name_folded`): computed once per write, so a search reads it instead of folding every row
    (5 s over 120,000 names; the table has 514 letters)."""
    assert "'" not in FOLD_FROM + FOLD_TO
    return f"translate({column_name}, '{FOLD_FROM}', '{FOLD_TO}')"


def contains_pattern(query: str) -> str:
    """A `LIKE` pattern for the folded `query` anywhere in the folded name (`\\` escapes)."""
    escaped = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Match:
    """One account a search found, as each kind's own search answers it."""

    kind: str  # "driver", "rider" or "operator"
    id: uuid.UUID
    name: str | None
    status: str | None
    member_number: str | None
    created_at: datetime

    @property
    def sort_key(self) -> tuple[str, uuid.UUID]:
        """The order of a search's results, the same as `name_folded, id` in SQL."""
        return fold(self.name or ""), self.id
