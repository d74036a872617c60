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
    r"تابعونا|تابعنا|تابعني|أتبعني|اتبعني|اشترك|اشتركوا|الاشتراك في|النشرة البريدية|"
    r"اقرأ أيضا|إقرأ أيضا|اقرأ المزيد|إقرأ المزيد|الأكثر قراءة|الأكثر مشاهدة|الأكثر تداولا|"
    r"آخر التحديثات|آخر الأخبار|أخبار ذات صلة|مواضيع ذات صلة|كلمات مفتاحية|"
    r"شارك على|شاركها على|شارك عبر|انشر على|"
    r"فيسبوك|الفيسبوك|فيس بوك|تويتر|تلغرام|تيليغرام|واتساب|يوتيوب|إنستغرام|انستغرام|"
    r"facebook|twitter|telegram|whatsapp|youtube|instagram|share|follow us|subscribe|read more"
)
_FURNITURE_LINE = re.compile(rf"^[\s•·▪●\-–—|#:>]*(?:{_FURNITURE_PHRASES})", re.IGNORECASE)
# Words that are furniture only when they are (nearly) the whole line: "شارك", "طباعة", "تصنيفات".
_FURNITURE_WORD = re.compile(
    r"^[\s•·▪●\-–—|#:>]*(?:شارك|مشاركة|انشر|اطبع|طباعة|المزيد|تصنيفات|الوسوم|وسوم|حفظ|نسخ الرابط)"
    r"[\s:|،.]*$"
)
_SYMBOLS_ONLY = re.compile(r"^[\s\W_]*$")  # no letter or digit at all: "+ = -", "•", "|||"
_LANG_SWITCH = re.compile(r"^\s*(?:(?:ar|en|ru|tr|fr|de|es|ع|عربي)\s*[|/]?\s*){1,6}$", re.IGNORECASE)
_MAX_FURNITURE_WORDS = 8


def strip_boilerplate(text: str) -> str:
    """Drop the page-furniture lines that web scrapes carry around an article.

    A line is dropped when it has no letter or digit, is a language switcher (``Ru En``), or is short
    (at most eight words) and begins with a share / follow / subscribe / read-more / section phrase.
    Runs of blank lines collapse to one. Lines of article text are kept unchanged.

    Args:
        text: raw scraped text, lines separated by ``\\n``.

    Returns:
        The text without those lines.
    """
    kept: list[str] = []
    for line in str(text).splitlines():
        stripped = line.strip()
        if not stripped:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        if _SYMBOLS_ONLY.match(stripped) or _LANG_SWITCH.match(stripped):
            continue
        if _FURNITURE_WORD.match(stripped):
            continue
        if len(stripped.split()) <= _MAX_FURNITURE_WORDS and _FURNITURE_LINE.match(stripped):
            continue
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
