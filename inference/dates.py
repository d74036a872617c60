"""Dates as scraped news pages write them, to ISO dates.

``parse_date`` reads ISO dates and date-times (``2024-06-12``, ``2024-06-12T08:30:00Z``), day-first
numeric dates (``12/06/2024``, ``12-6-2024``, ``12.06.2024``: the order of Arabic and European pages),
and dates with a month name in Arabic (both the Egyptian/Gulf names, ``يونيو``, and the Levantine ones,
``حزيران``), French or English, with Western, Arabic-Indic (``١٨``) or Persian digits, around the usual
words (a weekday, ``الموافق``, ``م``): ``12 يونيو 2024``, ``الأربعاء ١٨ فبراير ٢٠٢١``, ``June 12, 2024``,
``12 Jun 2024``. Anything else gives ``None``: the caller keeps the text as written and counts it.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["parse_date"]

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")

_MONTHS = {
    # Arabic, Egyptian / Gulf names (with the spellings pages use)
    "يناير": 1, "فبراير": 2, "مارس": 3, "أبريل": 4, "ابريل": 4, "إبريل": 4, "مايو": 5, "ماي": 5,
    "يونيو": 6, "يونيه": 6, "يوليو": 7, "يوليه": 7, "أغسطس": 8, "اغسطس": 8, "سبتمبر": 9,
    "أكتوبر": 10, "اكتوبر": 10, "نوفمبر": 11, "ديسمبر": 12,
    # Levantine / Iraqi names
    "كانون الثاني": 1, "شباط": 2, "آذار": 3, "اذار": 3, "نيسان": 4, "أيار": 5, "ايار": 5, "حزيران": 6,
    "تموز": 7, "آب": 8, "اب": 8, "أيلول": 9, "ايلول": 9, "تشرين الأول": 10, "تشرين الاول": 10,
    "تشرين الثاني": 11, "كانون الأول": 12, "كانون الاول": 12,
    # Maghreb
    "جانفي": 1, "فيفري": 2, "أفريل": 4, "افريل": 4, "جوان": 6, "جويلية": 7, "أوت": 8, "اوت": 8,
    # English and French
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
}  # fmt: skip

_MONTH_NAMES = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?!\d)")
_YEAR_FIRST = re.compile(r"(?<!\d)(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(rf"(?<!\d)(\d{{1,2}})\s*(?:من\s+)?({_MONTH_NAMES})[\s,،]*(\d{{4}})", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"({_MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?[\s,،]+(\d{{4}})", re.IGNORECASE)


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(value: object) -> dt.date | None:
    """The date ``value`` names, or ``None`` when it cannot be read (never raises)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.translate(_DIGITS).split()).replace("ـ", "")
    if m := _ISO.fullmatch(text.strip()):
        return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _DAY_MONTH_YEAR.search(text):
        return _date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    if m := _MONTH_DAY_YEAR.search(text):
        return _date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    if m := _ISO.search(text):
        return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _YEAR_FIRST.search(text):
        return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _NUMERIC.search(text):
        return _date(int(m[3]), int(m[2]), int(m[1]))
    return None
