"""Localized slot values from CLDR (babel): names, dates, times, amounts, units. No hand-written lexicons.

`Localizer(lang)` turns a language-neutral value into text of that language and memoises it:

    loc = localizer("de")
    loc.text("territory", "CH")               -> "Schweiz"
    loc.text("date", date(2025, 3, 14).toordinal()) -> "14. März 2025"
    loc.text("amount", (1250, "EUR"))          -> "12,50 €"
    loc.fill("{city}: {temperature}", {"city": "Europe/Paris", "temperature": 21})
                                               -> "Paris: 21 Grad Celsius"
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.core import get_global
from babel.dates import format_date, format_time, format_timedelta, get_day_names, get_timezone_location
from babel.numbers import format_currency, get_currency_name, get_currency_precision
from babel.units import format_unit

from rtrain.synth.spec import SLOT_TYPES

# Currencies "in use" are those tender on this day, so output never depends on today's date.
REFERENCE_DATE = dt.date(2025, 1, 1)
_DOUBLE_DOT = re.compile(r"(?<!\.)\.\.(?!\.)")  # "14 марта 2025 г.." -> "... г."


def language_script(lang: str) -> str | None:
    """ISO 15924 script CLDR expects for a language ("ru" -> "Cyrl"), from likely subtags.

    Simplified/Traditional Han ("Hans"/"Hant") are reported as "Hani" (Han), whose name reads as a script
    in every locale ("Simplified" alone does not).
    """
    likely = get_global("likely_subtags").get(lang)
    if not likely:
        return None
    parts = likely.split("_")
    script = parts[1] if len(parts) > 2 else None
    return "Hani" if script in ("Hans", "Hant") else script


def sentence_case(text: str, lang: str) -> str:
    """Upper-case the first letter if it is a lower-case letter (Turkish i -> İ); tidy a doubled period."""
    if ".." in text:
        text = _DOUBLE_DOT.sub(".", text)
    if text and text[0].islower():
        first = "İ" if (lang == "tr" and text[0] == "i") else text[0].upper()
        text = first + text[1:]
    return text


class Localizer:
    """Babel lookups for one language, memoised per (slot type, value)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        # Exemplar cities missing from a Latin-script locale fall back to the zone id ("Kolkata"),
        # which is how those languages write them; other scripts need a real localization.
        self.latin = language_script(lang) == "Latn"
        self._cache: dict[tuple[str, Any], str] = {}
        self._render: dict[str, Callable[[Any], str]] = {
            "territory": lambda code: self.locale.territories[code],
            "currency": lambda code: get_currency_name(code, locale=self.locale),
            "language": lambda code: self.locale.languages[code],
            "script": lambda code: self.locale.scripts[code],
            "city": lambda zone: get_timezone_location(zone, locale=self.locale, return_city=True),
            "date": lambda ordinal: format_date(dt.date.fromordinal(ordinal), format="long", locale=self.locale),
            "time": lambda minutes: format_time(dt.time(*divmod(minutes, 60)), format="short", locale=self.locale),
            "weekday": lambda day: get_day_names("wide", context="format", locale=self.locale)[day],
            "temperature": lambda c: format_unit(c, "temperature-celsius", length="long", locale=self.locale),
            "distance": lambda km: format_unit(km, "length-kilometer", length="long", locale=self.locale),
            "duration": lambda hours: format_timedelta(
                dt.timedelta(hours=hours), threshold=1, format="long", locale=self.locale
            ),
            "amount": self._amount,
            "quantity": lambda halves: format_unit(
                Decimal(halves) / 2, "mass-kilogram", length="long", locale=self.locale
            ),
        }

    def _amount(self, value: tuple[int, str]) -> str:
        """(minor units, currency) -> "12,50 €"; zero-decimal currencies read the number as whole units (¥1,250)."""
        minor, code = value
        number = Decimal(minor).scaleb(-2) if get_currency_precision(code) > 0 else Decimal(minor)
        return format_currency(number, code, locale=self.locale)

    def has(self, kind: str, value: Any) -> bool:
        """Whether CLDR has a real localization of this entity in this language (names only)."""
        if kind == "territory":
            return value in self.locale.territories
        if kind == "currency":
            return value in self.locale.currencies
        if kind == "language":
            return value in self.locale.languages
        if kind == "script":
            return value in self.locale.scripts
        if kind == "city":
            return self.latin or "city" in self.locale.time_zones.get(value, {})
        return True

    def text(self, kind: str, value: Any) -> str:
        """Localized text of one value of a slot type (see spec.SLOT_TYPES)."""
        key = (kind, value)
        out = self._cache.get(key)
        if out is None:
            out = self._render[kind](value)
            self._cache[key] = out
        return out

    def fill(self, template: str, values: dict[str, Any]) -> str:
        """Render a template with language-neutral slot values, sentence-cased."""
        cache, slots = self._cache, {}
        for name, value in values.items():
            key = (SLOT_TYPES[name], value)
            text = cache.get(key)
            slots[name] = text if text is not None else self.text(*key)
        return sentence_case(template.format_map(slots), self.lang)


@functools.cache
def localizer(lang: str) -> Localizer:
    """The process-wide memoised `Localizer` of a language."""
    return Localizer(lang)
