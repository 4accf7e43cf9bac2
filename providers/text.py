"""How long a text is, in the unit each platform counts in.

- ``CHARACTERS``: Unicode code points (what most platforms mean by "characters").
- ``GRAPHEMES``: user-perceived characters, Unicode extended grapheme clusters (UAX #29) — Bluesky
  (``maxGraphemes`` in its lexicon). A family emoji or a flag is one.
- ``X_WEIGHTED``: the twitter-text v3 weighted length X enforces: text is NFC-normalised; every
  URL counts 23 (t.co); an emoji sequence counts 2 however many code points it has; any other code
  point counts 1 inside the light ranges below and 2 outside them (CJK, for instance).
- ``UTF8_BYTES``: the length of the UTF-8 encoding — atproto's ``maxLength`` for strings.
- ``UTF16_UNITS``: UTF-16 code units — TikTok's "UTF-16 runes" (an emoji outside the BMP is 2).
- ``EMOJI_UTF8_BYTES``: code points, except that an emoji sequence counts its UTF-8 bytes — how
  Meta counts a Threads post's 500 (a 😀 is 4, a family emoji 25).
"""

from __future__ import annotations

import enum
import unicodedata

import regex

__all__ = ["TextUnit", "measure", "X_URL_LENGTH", "x_weighted_length", "emoji_bytes_length", "find_urls"]


class TextUnit(enum.Enum):
    CHARACTERS = "characters"
    GRAPHEMES = "graphemes"
    X_WEIGHTED = "x_weighted"
    UTF8_BYTES = "utf8_bytes"
    EMOJI_UTF8_BYTES = "emoji_utf8_bytes"
    UTF16_UNITS = "utf16_units"

    @property
    def label(self) -> str:
        """How a message names the unit: "312 graphemes", "290 weighted characters"."""
        return _LABELS[self]


_LABELS = {
    TextUnit.CHARACTERS: "characters",
    TextUnit.GRAPHEMES: "graphemes",
    TextUnit.X_WEIGHTED: "weighted characters",
    TextUnit.UTF8_BYTES: "bytes",
    TextUnit.EMOJI_UTF8_BYTES: "characters (an emoji counts its UTF-8 bytes)",
    TextUnit.UTF16_UNITS: "UTF-16 code units",
}

# twitter-text v3 configuration (config/v3.json): weights are in hundredths of a character.
X_SCALE = 100
X_DEFAULT_WEIGHT = 200
X_URL_LENGTH = 23
X_LIGHT_RANGES = (  # (first, last, weight): Latin-1 … Hangul Jamo, and some punctuation
    (0x0000, 0x10FF, 100),
    (0x2000, 0x200D, 100),
    (0x2010, 0x201F, 100),
    (0x2032, 0x2037, 100),
)

# URLs as twitter-text links them: with a scheme, or a bare host whose top-level domain is a
# country code or one of the common generic ones (twitter-text carries the full IANA list; this
# covers what people actually write, and a scheme always counts).
_GENERIC_TLDS = (
    "com|net|org|edu|gov|mil|int|info|biz|name|pro|io|co|ai|app|dev|me|tv|ly|xyz|online|site|"
    "tech|store|blog|news|shop|page|link|club|live|cloud|social|art|design|media|studio|global"
)
_URL = regex.compile(
    r"(?<![\w@.-])"  # not inside a word, an email address or a longer host
    r"(?:"
    r"https?://[^\s<>\"']+"
    r"|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + _GENERIC_TLDS + r"|[a-z]{2})(?![\w-])(?:[/?#][^\s<>\"']*)?"
    r")",
    regex.IGNORECASE,
)
# Punctuation that ends a sentence rather than the URL it follows.
_URL_TRAILING = ".,;:!?)]}'\""

_GRAPHEME = regex.compile(r"\X")
_EMOJI_CLUSTER = regex.compile(
    r"\p{Emoji_Presentation}|\p{Regional_Indicator}|\p{Extended_Pictographic}\uFE0F|\p{Emoji}\uFE0F?\u20E3"
)


def find_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL in ``text``, end exclusive, trailing sentence punctuation excluded."""
    spans = []
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _URL_TRAILING:
            end -= 1
        spans.append((start, end))
    return spans


def _code_point_weight(code_point: int) -> int:
    for first, last, weight in X_LIGHT_RANGES:
        if first <= code_point <= last:
            return weight
    return X_DEFAULT_WEIGHT


def _weight_of_plain_text(text: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI_CLUSTER.search(cluster):
            total += X_DEFAULT_WEIGHT  # an emoji sequence (ZWJ family, flag, keycap, skin tone) is 2
        else:
            total += sum(_code_point_weight(ord(c)) for c in cluster)
    return total


def x_weighted_length(text: str) -> int:
    """X's weighted length: the number compared with the 280 limit."""
    text = unicodedata.normalize("NFC", text)
    weight = 0
    cursor = 0
    for start, end in find_urls(text):
        weight += _weight_of_plain_text(text[cursor:start]) + X_URL_LENGTH * X_SCALE
        cursor = end
    weight += _weight_of_plain_text(text[cursor:])
    # twitter-text rounds the weighted length down to whole characters.
    return weight // X_SCALE


def emoji_bytes_length(text: str) -> int:
    """Threads' length: one per code point, but an emoji sequence counts its UTF-8 bytes."""
    return sum(
        len(cluster.encode("utf-8")) if _EMOJI_CLUSTER.search(cluster) else len(cluster)
        for cluster in _GRAPHEME.findall(text)
    )


# Units that count an ASCII text's code points (graphemes: but for CR LF, one cluster).
_ONE_PER_ASCII_CODE_POINT = frozenset(
    {TextUnit.GRAPHEMES, TextUnit.UTF8_BYTES, TextUnit.EMOJI_UTF8_BYTES, TextUnit.UTF16_UNITS}
)


def measure(text: str, unit: TextUnit) -> int:
    """The length of ``text`` counted the way ``unit`` says."""
    if unit is TextUnit.CHARACTERS:
        return len(text)
    if text.isascii() and unit in _ONE_PER_ASCII_CODE_POINT:
        # In ASCII, Unicode's grapheme rules join only CR LF, and no cluster is an emoji: the
        # answer of the patterns below without running them (two measures per target validated).
        return len(text) - text.count("\r\n") if unit is TextUnit.GRAPHEMES else len(text)
    if unit is TextUnit.GRAPHEMES:
        return len(_GRAPHEME.findall(text))
    if unit is TextUnit.X_WEIGHTED:
        return x_weighted_length(text)
    if unit is TextUnit.UTF8_BYTES:
        return len(text.encode("utf-8"))
    if unit is TextUnit.EMOJI_UTF8_BYTES:
        return emoji_bytes_length(text)
    if unit is TextUnit.UTF16_UNITS:
        return len(text.encode("utf-16-le")) // 2
    raise ValueError(f"unknown text unit {unit!r}")
