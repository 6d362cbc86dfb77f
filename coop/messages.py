"""Texts people read, marked for translation where they are written.

The API speaks English; the co-op's pages speak French too. A text written below the pages (a
reason a proposal is refused, a row of the data register) is marked with `N_`: it stays the
English text the API sends, and `make messages` extracts it into the pages' one catalogue per
language. The pages translate it where they show it (`server.web.i18n`): a fixed text by its
own words, a text with values (`"Must be at least {bound}"`, filled in with `str.format` or by
pydantic from its context) by matching the English sentence against its marked template and
filling the translation with the same values.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks `message` for the catalogues; answers it unchanged (English)."""
    return message


__all__ = ["N_"]
