"""French and English for the pages: the gettext catalogues, the language of a request, and
money, numbers and times written the way each language writes them.

The catalogues are Babel `.po` files under `translations/` (English is the source language, so
it needs none). They are compiled in memory when the service starts: no build step, and no
compiled file that could drift from its source.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
# Numbers and money are written as in Canada (the default city is Montréal): "14,20 $" in
# French, "$14.20" in English.
FORMAT_LOCALES = {"en": "en_CA", "fr": "fr_CA"}
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}
LANGUAGE_COOKIE = "coop_lang"
# "name: value" and "a; b" as each language writes them (docs/french.md, "Typography").
COLON = {"en": ": ", "fr": "\u00a0: "}
SEMICOLON = {"en": "; ", "fr": "\u202f; "}
DATETIME_PATTERNS = {"en": "MMM d, y, HH:mm", "fr": "d MMM y, HH 'h' mm"}


@cache
def catalogue(language: str) -> Catalog | None:
    """The `.po` catalogue of a language (None for English, the source language)."""
    po = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not po.exists():
        return None
    with po.open("rb") as handle:
        return read_po(handle, locale=language)


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of a language (English: the source strings themselves)."""
    catalog = catalogue(language)
    if catalog is None:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A decimal as the wire writes it ("3.50", "-2", "0.0025"): never a code, a date or a version.
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def _pattern(template: str) -> re.Pattern[str]:
    """A template's English sentence with its `{name}` values as named groups."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)


@cache
def _templates(language: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The catalogue's brace templates (texts with values, written below the pages and marked
    with `N_`), the most specific first (the longest fixed words)."""
    catalog = catalogue(language)
    if catalog is None:
        return ()
    found = [
        (message.id, message.string)
        for message in catalog
        if isinstance(message.id, str)
        and isinstance(message.string, str)
        and message.string
        and _PLACEHOLDER.search(message.id)
    ]
    found.sort(key=lambda item: len(_PLACEHOLDER.sub("", item[0])), reverse=True)
    return tuple((_pattern(english), translated) for english, translated in found)


# pydantic prefixes the message of a ValueError raised in a validator.
_PREFIXES = ("Value error, ", "Assertion failed, ")


def api_text(language: str, text: str) -> str | None:
    """An English text the API wrote (an error's reason, a row of the data register), in
    `language`: by its own words if the catalogue has them, else by the marked template it was
    filled in from (`"Must be at least {bound}"`), its values carried over (translated too when
    they are marked texts themselves). None when the catalogue knows neither."""
    if language == DEFAULT_LANGUAGE:
        return text
    gettext = translations(language).gettext
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    translated = gettext(text)
    if translated != text:
        return translated
    for pattern, template in _templates(language):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = {
            name: gettext(value).replace("' or '", f"' {gettext('or')} '") if value else value
            for name, value in match.groupdict().items()
        }
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return None
    return None


def negotiate(accept_language: str | None, cookie: str | None) -> str:
    """The page's language: the visitor's own choice (the switch), else the browser's
    Accept-Language in order of preference, else English."""
    if cookie in LANGUAGES:
        assert cookie is not None
        return cookie
    preferences: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            preferences.append((-quality, position, primary))
    if preferences:
        return min(preferences)[2]
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Formatter:
    """Numbers, money and times for one language, in the service area's time zone."""

    language: str
    zone: ZoneInfo

    @property
    def locale(self) -> Locale:
        return Locale.parse(FORMAT_LOCALES[self.language])

    def money(self, amount: Decimal | str | None, currency: str = "CAD") -> str:
        if amount is None:
            return "—"
        return format_currency(Decimal(amount), currency, locale=self.locale)

    def amount(self, amount: Decimal | str | None, currency: str = "CAD") -> str:
        """Money with every place it has ("1.2345 $" for an item of a receipt)."""
        if amount is None:
            return "—"
        return format_currency(
            Decimal(amount), currency, locale=self.locale, decimal_quantization=False
        )

    def number(self, value: int | float | Decimal | str | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        number = Decimal(str(value))
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(number, format=pattern, locale=self.locale)

    def percent(self, value: Decimal | str | None) -> str:
        """`value` in percent ("8" is 8 %)."""
        if value is None:
            return "—"
        # The locale's own pattern ("8 %" with a no-break space in French, "8%" in English),
        # with up to three decimals ("9,975 %" is the Québec sales tax).
        pattern = self.locale.percent_formats[None].pattern.replace("#,##0", "#,##0.###", 1)
        return format_percent(Decimal(value) / 100, format=pattern, locale=self.locale)

    def figure(self, value: object) -> object:
        """A term's value as the language writes it: a number or a decimal string with its
        places kept ("0.35" is "0,35" in French, "1234.5" is "1 234,5"); anything else (a
        word, a list, a switch) as it is."""
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            return value
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return value
        if not number.is_finite() or (isinstance(value, str) and not _DECIMAL.fullmatch(value)):
            return value
        exponent = number.as_tuple().exponent
        places = max(0, -exponent) if isinstance(exponent, int) else 0
        return self.number(number, places)

    def when(self, value: datetime | None) -> str:
        """A date and time to the minute, on a 24-hour clock: "Nov 30, 2026, 14:05" and
        "30 nov. 2026, 14 h 05"."""
        if value is None:
            return "—"
        return format_datetime(
            value, DATETIME_PATTERNS[self.language], tzinfo=self.zone, locale=self.locale
        )

    def date(self, value: date | None) -> str:
        """A calendar date (a pay period's first day): "Nov 30, 2026", "30 nov. 2026"."""
        if value is None:
            return "—"
        return format_date(value, "medium", locale=self.locale)

    def day(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_date(value.astimezone(self.zone), "long", locale=self.locale)

    def duration(self, seconds: int | float | None) -> str:
        """A duration in the largest sensible unit: "45 s", "3 min", "2.5 h", "3 days"."""
        if seconds is None:
            return "—"
        gettext = translations(self.language).gettext
        if seconds < 90:
            return gettext("%(n)s s") % {"n": self.number(round(seconds))}
        if seconds < 90 * 60:
            return gettext("%(n)s min") % {"n": self.number(round(seconds / 60))}
        if seconds < 48 * 3600:
            return gettext("%(n)s h") % {"n": self.number(Decimal(seconds) / 3600, 1)}
        return gettext("%(n)s days") % {"n": self.number(Decimal(seconds) / 86400, 1)}


def template_callables(language: str) -> dict[str, Any]:
    """`gettext`, `ngettext` and `_` for a template, as Jinja's new-style i18n calls them:
    escaped when autoescaping, and `%(name)s` filled from keyword arguments."""
    catalogue = translations(language)

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        value = catalogue.gettext(message)
        if context.eval_ctx.autoescape:
            value = Markup(value)
        return value % variables if variables else value

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        value = catalogue.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            value = Markup(value)
        return value % variables

    return {"gettext": gettext, "ngettext": ngettext, "_": gettext}
