"""Arabic text preprocessing, applied identically at training and at prediction time.

A checkpoint stores the *names* of its preprocessing steps (``config.json`` → ``preprocessing``);
:func:`build_preprocessor` turns those names back into the same function at load time.

``arabert_v02`` reimplements what ``arabert.preprocess.ArabertPreprocessor("bert-base-arabertv02")``
does with its default arguments (the normalisation AraBERT v0.2 was pretrained with): HTML unescaping,
diacritics and tatweel removal, URL / e-mail / mention replacement, HTML tag removal, Indic→Arabic
digits, repeated-character squashing, punctuation spacing, ``/`` → ``-`` and removal of characters
outside the AraBERT alphabet. ``tests/test_preprocessing.py`` checks it against the ``arabert``
package itself, output for output. It is reimplemented rather than imported because ``arabert`` pins
``emoji==1.4.2`` and pulls Farasa, neither of which v0.2 needs.

``strip_boilerplate`` removes the lines that scraped news pages carry around an article: share /
follow / subscribe / "read more" lines, category and "latest updates" headers, language switchers and
lines made of symbols only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

__all__ = [
    "PREPROCESSORS",
    "arabert_v02",
    "build_preprocessor",
    "has_arabic",
    "strip_boilerplate",
]

# --------------------------------------------------------------------------------------------------
# arabert_v02: the patterns of arabert 1.0.1 (preprocess.py). Four are anchored with a lookbehind so that
# they run in linear time: as written, `[\w-]+@...` tries every start inside a long run of word characters
# and rescans the run each time (a 160,000-character text without spaces took minutes). A match of these
# patterns can only begin where its run begins (a later start inside the same run reaches the same
# following character), so the anchored pattern finds exactly the same matches; the verbatim patterns
# are kept in the tests, which check that both give the same output.
# --------------------------------------------------------------------------------------------------
_TASHKEEL = dict.fromkeys(map(ord, "\u064b\u064c\u064d\u064e\u064f\u0650\u0652\u0651"))
_TATWEEL = "\u0640"
_URL_PATTERNS = [
    re.compile(p)
    for p in (
        r"(http(s)?:\/\/.)?(www\.)?[-a-zA-Z0-9@:%._\+~#=]{2,256}\.[a-z]{2,6}\b([-a-zA-Z0-9@:%_\+.~#?&//=]*)",
        r"@(https?|ftp)://(-\.)?([^\s/?\.#-]+\.?)+(/[^\s]*)?$@iS",
        r"http[s]?://[a-zA-Z0-9_\-./~\?=%&]+",
        r"www[a-zA-Z0-9_\-?=%&/.~]+",
        r"(?<![a-zA-Z])[a-zA-Z]+\.com",
        r"(?=http)[^\s]+",
        r"(?=www)[^\s]+",
        r"://",
    )
]
_EMAIL_PATTERNS = [re.compile(r"(?<![\w-])[\w-]+@([\w-]+\.)+[\w-]+"), re.compile(r"(?<!\S)\S+@\S+")]
_MENTION_PATTERN = re.compile(r"@[\w\d]+")
_BR_PATTERN = re.compile("<br />")
_TAG_PATTERN = re.compile("</?[^>]+>")
_HINDI_TO_ARABIC = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")
_REPEATED_CHAR = re.compile(r"(\D)\1{2,}", re.DOTALL)
_SPACE_AROUND = re.compile("([^0-9\u0621-\u063a\u0641-\u064a\u0660-\u0669a-zA-Z\\[\\]])")
_DIGIT_THEN_WORD = re.compile("(?<!\\d)(\\d+)([\u0621-\u063a\u0641-\u064a\u0660-\u066c]+)")
_WORD_THEN_DIGIT = re.compile(
    "(?<![\u0621-\u063a\u0641-\u064a\u0660-\u066c])([\u0621-\u063a\u0641-\u064a\u0660-\u066c]+)(\\d+)"
)
_REJECTED_CHARS = re.compile(
    r"[^0-9\u0621-\u063A\u0640-\u066C\u0671-\u0674a-zA-Z\[\]!\"#\$%\'\(\)\*\+,\.:;\-<=·>?@\[\\\]\^_ـ`{\|}~—٪’،؟`୍“؛”ۚ»؛\s+«–…‘]"
)


def arabert_v02(text: str) -> str:
    """Normalise ``text`` as AraBERT v0.2 was pretrained (``ArabertPreprocessor`` semantics).

    Args:
        text: raw article text.

    Returns:
        The normalised text, tokens separated by single spaces.
    """
    text = html.unescape(str(text))
    text = text.translate(_TASHKEEL).replace(_TATWEEL, "")
    for pattern in _URL_PATTERNS:
        text = pattern.sub(" [رابط] ", text)
    for pattern in _EMAIL_PATTERNS:
        text = pattern.sub(" [بريد] ", text)
    text = _MENTION_PATTERN.sub(" [مستخدم] ", text)
    text = _BR_PATTERN.sub(" ", text)
    text = _TAG_PATTERN.sub(" ", text)
    text = text.translate(_HINDI_TO_ARABIC)
    text = _REPEATED_CHAR.sub(r"\1\1", text)
    text = _SPACE_AROUND.sub(r" \1 ", text)
    text = _DIGIT_THEN_WORD.sub(r" \1 \2 ", text)
    text = _WORD_THEN_DIGIT.sub(r" \1 \2 ", text)
    text = text.replace("/", "-")
    text = _REJECTED_CHARS.sub(" ", text)
    return " ".join(text.replace("\ufe0f", "").split())


# --------------------------------------------------------------------------------------------------
# strip_boilerplate
# --------------------------------------------------------------------------------------------------
# Phrases that, opening a short line of their own, are page furniture rather than article text.
_FURNITURE_PHRASES = (
    r"تابعونا|تابعنا|تابعني|أتبعني|اتبعني|تابعوا|لمتابعة آخر|اشترك|اشتركوا|للاشتراك|الاشتراك في|النشرة البريدية|"
    r"انضم إلى|انضموا إلى|حمل تطبيق|حمّل تطبيق|اضغط هنا|انقر هنا|"
    r"اقرأ أيضا|إقرأ أيضا|اقرأ أيضاً|إقرأ أيضاً|اقرأ المزيد|إقرأ المزيد|شاهد أيضا|شاهد أيضاً|"
    r"الأكثر قراءة|الأكثر مشاهدة|الأكثر تداولا|الأكثر تداولاً|"
    r"آخر التحديثات|آخر الأخبار|أخبار ذات صلة|مواضيع ذات صلة|مقالات ذات صلة|قد يعجبك أيضا|قد يهمك أيضا|كلمات مفتاحية|"
    r"شارك على|شاركها على|شارك عبر|شارك الخبر|شارك المقال|انشر على|"
    r"فيسبوك|الفيسبوك|فيس بوك|تويتر|تلغرام|تيليغرام|واتساب|يوتيوب|إنستغرام|انستغرام|"
    r"facebook|twitter|telegram|whatsapp|youtube|instagram|share|follow us|subscribe|read more|related|most read"
)
_FURNITURE_LINE = re.compile(rf"^[\s•·▪●\-–—|#:>]*(?:{_FURNITURE_PHRASES})", re.IGNORECASE)
# Headers after which the page lists other articles' headlines ("most read", "related", "read also").
_BLOCK_HEADER = re.compile(
    r"^[\s•·▪●\-–—|#:>]*(?:الأكثر قراءة|الأكثر مشاهدة|الأكثر تداولا|اقرأ أيضا|إقرأ أيضا|اقرأ أيضاً|إقرأ أيضاً|"
    r"شاهد أيضا|شاهد أيضاً|أخبار ذات صلة|مواضيع ذات صلة|مقالات ذات صلة|قد يعجبك أيضا|قد يهمك أيضا|آخر الأخبار|"
    r"related|most read)[\s:.]*$",
    re.IGNORECASE,
)
# Words that are furniture only when they are (nearly) the whole line: "شارك", "طباعة", "تصنيفات".
_FURNITURE_WORD = re.compile(
    r"^[\s•·▪●\-–—|#:>]*(?:شارك|مشاركة|انشر|اطبع|طباعة|المزيد|تصنيفات|الوسوم|وسوم|حفظ|نسخ الرابط)"
    r"[\s:|،.]*$"
)
# Photo captions, credits and source lines: "الصورة: ...", "المصدر: تاس", "- REUTERS", "إسطنبول-أ ف ب".
_CREDIT_LINE = re.compile(
    r"^[\s•·\-–—(]*(?:الصورة|صورة|مصدر الصورة|حقوق الصورة|تصوير|المصدر|مصدر الخبر|photo|image|source|credit)\s*[:：]",
    re.IGNORECASE,
)
_AGENCY = re.compile(
    r"(?:رويترز|أ\s?ف\s?ب|أ\.ف\.ب|فرانس برس|الأناضول|تاس|سبوتنيك|نوفوستي|إنترفاكس|د\s?ب\s?أ|أسوشيتد برس|وكالات|"
    r"\bAFP\b|\bREUTERS\b|\bAP\b|\bDPA\b|\bTASS\b|\bGetty\b)",
    re.IGNORECASE,
)
_MONTHS = (
    r"يناير|فبراير|مارس|أبريل|ابريل|مايو|يونيو|يوليو|أغسطس|اغسطس|سبتمبر|أكتوبر|اكتوبر|نوفمبر|ديسمبر|"
    r"كانون الثاني|شباط|آذار|نيسان|أيار|حزيران|تموز|آب|أيلول|تشرين الأول|تشرين الثاني|كانون الأول|"
    r"january|february|march|april|may|june|july|august|september|october|november|december"
)
_DATE = re.compile(rf"(?:{_MONTHS})\s*[/،,]?\s*[0-9٠-٩]{{4}}", re.IGNORECASE)
_SYMBOLS_ONLY = re.compile(r"^[\s\W_]*$")  # no letter or digit at all: "+ = -", "•", "|||"
_LANG_SWITCH = re.compile(r"^\s*(?:(?:ar|en|ru|tr|fr|de|es|ع|عربي)\s*[|/]?\s*){1,6}$", re.IGNORECASE)
_MAX_FURNITURE_WORDS = 8
_MAX_HEADLINE_WORDS = 25


def _furniture(line: str, words: int) -> bool:
    """Whether one non-blank line is page furniture on its own."""
    if _SYMBOLS_ONLY.match(line) or _LANG_SWITCH.match(line) or _FURNITURE_WORD.match(line):
        return True
    if words <= _MAX_FURNITURE_WORDS and _FURNITURE_LINE.match(line):
        return True
    if words <= 12 and _CREDIT_LINE.match(line):  # a caption, a photo credit, a source line
        return True
    if words <= 5 and _AGENCY.search(line):  # "- REUTERS", "إسطنبول-أ ف ب"
        return True
    if words <= 8 and _DATE.search(line) and not line.rstrip().endswith("."):  # "حول العالم 12 يونيو 2024 0"
        return True
    return words <= 6 and ("||" in line or ("|" in line and "#" in line))  # "SiteName|| #متابعات"


def strip_boilerplate(text: str) -> str:
    """Drop the page furniture that web scrapes carry around an article, in one pass over the lines.

    Dropped: lines with no letter or digit; language switchers (``Ru En``); short lines that begin with a
    share / follow / subscribe / read-more / section phrase; photo captions, credits and source lines
    (``الصورة: ...``, ``المصدر: ...``, a short line naming a news agency); a line that is only a date
    (with a section name or a counter); a short line with ``||`` or a hashtag (site names); a line repeating
    an earlier one (a headline or caption printed twice); and, after a "most read" / "related" / "read
    also" header, the headlines listed under it (lines of at most 25 words not ending in a full stop).
    Runs of blank lines collapse to one. Lines of article text are kept unchanged. A text of one line
    (a tweet, a headline) is not a page: it is returned as it is, stripped, whatever it holds.

    Args:
        text: raw scraped text, lines separated by ``\\n``.

    Returns:
        The text without those lines.
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    kept: list[str] = []
    seen: set[str] = set()
    in_headlines = False
    for line in str(text).splitlines():
        stripped = line.strip()
        if not stripped:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        words = len(stripped.split())
        if _BLOCK_HEADER.match(stripped):
            in_headlines = True
            continue
        if in_headlines:
            if words <= _MAX_HEADLINE_WORDS and not stripped.endswith((".", "؟.")):
                continue
            in_headlines = False
        if _furniture(stripped, words):
            continue
        key = " ".join(stripped.split())
        if words >= 3 and key in seen:
            continue
        seen.add(key)
        kept.append(stripped)
    while kept and kept[-1] == "":
        kept.pop()
    return "\n".join(kept)


def identity(text: str) -> str:
    """Return ``text`` unchanged (for encoders that want raw text)."""
    return str(text)


PREPROCESSORS: dict[str, Callable[[str], str]] = {
    "strip_boilerplate": strip_boilerplate,
    "arabert_v02": arabert_v02,
    "none": identity,
}

_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3]")


def has_arabic(text: str) -> bool:
    """Whether ``text`` contains at least one Arabic letter."""
    return bool(_ARABIC_LETTER.search(text))


def build_preprocessor(steps: Sequence[str]) -> Callable[[str], str]:
    """Compose the named preprocessing steps, in order, into one function.

    Args:
        steps: names from :data:`PREPROCESSORS`, e.g. ``["strip_boilerplate", "arabert_v02"]``.

    Returns:
        A function ``str -> str`` applying each step in turn.

    Raises:
        ValueError: if a name is not a known step.
    """
    unknown = [s for s in steps if s not in PREPROCESSORS]
    if unknown:
        raise ValueError(f"preprocessing: unknown step(s) {unknown!r}; known steps are {sorted(PREPROCESSORS)}")
    functions = [PREPROCESSORS[s] for s in steps]

    def preprocess(text: str) -> str:
        for function in functions:
            text = function(text)
        return text

    return preprocess
