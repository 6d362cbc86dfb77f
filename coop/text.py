"""Free text people write (names, comments, reasons, statements, titles, rationales), validated
once for every field.

Every such field of every request schema is `Annotated[str, FreeText(max_chars=N)]` (or one of
the aliases below). The text is, in this order:

1. Unicode-normalised to NFC, so "é" typed as e + combining accent and "é" typed as one code
   point are the same text, stored and compared once;
2. stripped of leading and trailing white space;
3. refused if it holds a control character (Unicode category Cc: NUL, escape, carriage
   return, ...), other than newline and tab in multi-line fields; or a lone surrogate (which
   JSON can carry in a `\\ud800` escape but no database can store); or a non-character;
4. refused if shorter than `min_chars` (1 by default: blank is not text) or longer than
   `max_chars` code points, counted after normalisation.

A refusal is a pydantic error on the field, so the service answers `422 validation_error`
naming it (docs/protocol.md, "Free text").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from coop.messages import N_

# Allowed in multi-line text although they are control characters.
MULTILINE_CONTROLS = frozenset("\n\t")


def _refused_character(char: str, multiline: bool) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multiline and char in MULTILINE_CONTROLS)
    if category == "Cs":  # a lone surrogate: not text, and not encodable as UTF-8
        return True
    code = ord(char)
    # Non-characters (U+FDD0..U+FDEF and the last two of every plane) are never text.
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def describe(char: str) -> str:
    """`U+0000`, the way the error names a refused character."""
    return f"U+{ord(char):04X}"


@dataclass(frozen=True)
class FreeText:
    """Marks a `str` as free text: `Annotated[str, FreeText(max_chars=200)]`."""

    max_chars: int
    min_chars: int = 1
    multiline: bool = True

    def clean(self, value: str) -> str:
        text = unicodedata.normalize("NFC", value).strip()
        for position, char in enumerate(text):
            if _refused_character(char, self.multiline):
                allowed = N_("; newline and tab are allowed") if self.multiline else ""
                raise PydanticCustomError(
                    "text_control_character",
                    N_(
                        "Text must not contain control characters or non-characters "
                        "(found {character} at position {position}){allowed}"
                    ),
                    {"character": describe(char), "position": position, "allowed": allowed},
                )
        if len(text) < self.min_chars:
            raise PydanticCustomError(
                "string_too_short",
                N_("Text should have at least {min_length} character(s) besides white space"),
                {"min_length": self.min_chars},
            )
        if len(text) > self.max_chars:
            raise PydanticCustomError(
                "string_too_long",
                N_("Text should have at most {max_length} characters"),
                {"max_length": self.max_chars},
            )
        return text

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            self.clean, core_schema.str_schema(strict=True)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minLength=self.min_chars, maxLength=self.max_chars)
        json_schema["pattern"] = (
            r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$" if self.multiline else r"^[^\x00-\x1f\x7f-\x9f]*$"
        )
        return json_schema


# The fields' limits, by kind. A name or a title is one line; the rest may have several.
Name = Annotated[str, FreeText(max_chars=200, multiline=False)]
MemberNumber = Annotated[str, FreeText(max_chars=64, multiline=False)]
Title = Annotated[str, FreeText(max_chars=200, multiline=False)]
