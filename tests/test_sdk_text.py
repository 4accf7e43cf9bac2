"""Text measurement checked against the platforms' published counting rules.

X: twitter-text v3 (docs.x.com "Counting characters"): NFC first; code points in 0-4351 and three
punctuation ranges weigh 1, all others 2; a URL counts 23 whatever its length; an emoji sequence
counts 2. Bluesky: 300 graphemes (extended grapheme clusters). atproto maxLength: UTF-8 bytes.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import Limits, TextUnit, measure
from providers.text import find_urls

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"  # man ZWJ woman ZWJ girl ZWJ boy
FLAG_JP = "\U0001F1EF\U0001F1F5"
THUMBS_MEDIUM = "\U0001F44D\U0001F3FD"  # thumbs up + skin tone modifier
KEYCAP_ONE = "1\uFE0F\u20E3"
E_COMBINING = "e\u0301"  # e + combining acute accent
CJK = "日本語"


@pytest.mark.parametrize(
    "text, characters, graphemes, x_weighted, utf8_bytes",
    [
        ("hello", 5, 5, 5, 5),
        (FAMILY, 7, 1, 2, 25),
        (FLAG_JP, 2, 1, 2, 8),
        (THUMBS_MEDIUM, 2, 1, 2, 8),
        (KEYCAP_ONE, 3, 1, 2, 7),
        (E_COMBINING, 2, 1, 1, 3),  # NFC makes it one é for X
        (CJK, 3, 3, 6, 9),
        ("café ☕", 6, 6, 7, 9),  # ☕ (U+2615) has emoji presentation: 2 for X
        ("“quoted” — dash", 15, 15, 15, 21),  # U+201C/D and U+2014 lie in X's light ranges
        ("", 0, 0, 0, 0),
    ],
)
def test_each_unit_counts_as_the_platform_does(text, characters, graphemes, x_weighted, utf8_bytes):
    assert measure(text, TextUnit.CHARACTERS) == characters
    assert measure(text, TextUnit.GRAPHEMES) == graphemes
    assert measure(text, TextUnit.X_WEIGHTED) == x_weighted
    assert measure(text, TextUnit.UTF8_BYTES) == utf8_bytes


@pytest.mark.parametrize(
    "text, weighted",
    [
        ("https://example.com", 23),
        ("https://example.com/" + "a" * 200, 23),  # a long URL is still 23
        ("read https://example.com/x.", 5 + 23 + 1),  # the full stop ends the sentence, not the URL
        ("http://t.co", 23),
        ("example.com", 23),  # a bare domain is linked too
        ("www.example.co.uk/page?q=1", 23),
        ("mail me at someone@example.com", 30),  # an email address is not a URL
        ("two https://a.example and https://b.example links", 4 + 23 + 5 + 23 + 6),
        ("日本 https://example.jp", 4 + 1 + 23),
    ],
)
def test_x_counts_every_url_as_23(text, weighted):
    assert measure(text, TextUnit.X_WEIGHTED) == weighted


def test_x_limit_of_280_in_practice():
    # 140 CJK characters fill a post; 141 do not — the reason X_WEIGHTED exists.
    limits = Limits(max_text_length=280, text_unit=TextUnit.X_WEIGHTED)
    assert limits.measure("あ" * 140) == 280
    assert limits.measure("あ" * 141) == 282
    # 140 family emoji: 980 code points, yet exactly 280 for X.
    assert limits.measure(FAMILY * 140) == 280


def test_bluesky_300_graphemes_is_not_300_code_points():
    limits = Limits(max_text_length=300, text_unit=TextUnit.GRAPHEMES)
    assert limits.measure(FAMILY * 300) == 300
    assert measure(FAMILY * 300, TextUnit.CHARACTERS) == 2100
    assert limits.measure(E_COMBINING * 301) == 301


def test_url_spans_exclude_trailing_punctuation():
    text = "see (https://example.com/a), then example.org!"
    assert [text[a:b] for a, b in find_urls(text)] == ["https://example.com/a", "example.org"]


@pytest.mark.parametrize(
    "code_point, weight",
    [
        (0x07FF, 1),
        (0x0800, 1),
        (0x10FF, 1),  # the last of the light range 0-4351
        (0x1100, 2),  # Hangul Jamo: the first heavy code point
        (0x1FFF, 2),
        (0x2000, 1),  # NFC makes it U+2002, as light
        (0x2002, 1),
        (0x200D, 1),  # zero width joiner, alone
        (0x200E, 2),
        (0x200F, 2),
        (0x2010, 1),
        (0x201F, 1),
        (0x2020, 2),
        (0x2031, 2),
        (0x2032, 1),
        (0x2037, 1),
        (0x2038, 2),
    ],
    ids=lambda value: f"U+{value:04X}" if isinstance(value, int) and value > 2 else str(value),
)
def test_x_weighs_each_range_to_its_edges(code_point, weight):
    assert measure(chr(code_point), TextUnit.X_WEIGHTED) == weight
    assert measure("a" + chr(code_point) * 3, TextUnit.X_WEIGHTED) == 1 + 3 * weight


@pytest.mark.parametrize(
    "text, weighted",
    [
        ("नमस्ते दुनिया", 13),  # Devanagari: every code point of a cluster weighs 1, not the cluster
        ("\u2764\uFE0F", 2),  # a red heart with VS16 is one emoji, 2
        ("\u2764\uFE0F\u2764\uFE0F", 4),
        ('say "https://example.com/a" ok', 5 + 23 + 4),
        ("https://example.com/a; next", 23 + 6),
        ("see https://example.com: it", 4 + 23 + 4),
        ("wow https://example.com!", 4 + 23 + 1),
        ("(https://example.com/a?b=c)", 1 + 23 + 1),
        ("HTTPS://EXAMPLE.COM/A", 23),  # schemes and hosts are case-insensitive
        ("EXAMPLE.COM", 23),
        ("https://studio.photography/x", 23),  # a scheme links any TLD
        ("studio.photography", 18),  # a bare host needs a TLD on the list (a known shortfall)
        ("my.global", 23),  # the last generic TLD on the list
        ("foo.com", 23),  # the first
        ("x.de", 23),  # any two-letter country code
        ("a.b-c.org", 23),
        ("file.py5", 8),  # a digit is no TLD
    ],
)
def test_x_counts_urls_and_scripts_as_twitter_text_does(text, weighted):
    assert measure(text, TextUnit.X_WEIGHTED) == weighted


def test_x_weighted_length_is_a_whole_number():
    for text in ("a", "日本", "https://example.com", "\u2764\uFE0F", ""):
        length = measure(text, TextUnit.X_WEIGHTED)
        assert type(length) is int, f"{text!r} measured {length!r}"


def test_every_unit_has_a_label_and_a_measure():
    assert [unit.label for unit in TextUnit] == ["characters", "graphemes", "weighted characters", "bytes", "characters (an emoji counts its UTF-8 bytes)", "UTF-16 code units"]
    assert [unit.value for unit in TextUnit] == ["characters", "graphemes", "x_weighted", "utf8_bytes", "emoji_utf8_bytes", "utf16_units"]
    with pytest.raises(ValueError, match="unknown text unit"):
        measure("a", "characters")  # a string is not a unit


@pytest.mark.parametrize(
    "text, urls",
    [
        ("a.b.example.com/path.", ["a.b.example.com/path"]),
        ("https://example.com/a.,;:!?)]}", ["https://example.com/a"]),
        ("user@example.com", []),
        ("-example.com", []),  # inside a longer host
        ("example.com-x", []),
        ("word.example.com", ["word.example.com"]),
    ],
)
def test_url_spans(text, urls):
    assert [text[a:b] for a, b in find_urls(text)] == urls


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text(alphabet="ab\r\n #*0"))
def test_an_ascii_text_measures_as_the_unicode_patterns_measure_it(text):
    """ASCII takes a short path (only CR LF joins into one grapheme, no cluster is an emoji); its
    answer is the patterns' own, for every unit that path serves."""
    from providers.text import _GRAPHEME, emoji_bytes_length

    assert measure(text, TextUnit.GRAPHEMES) == len(_GRAPHEME.findall(text))
    assert measure(text, TextUnit.EMOJI_UTF8_BYTES) == emoji_bytes_length(text)
    assert measure(text, TextUnit.UTF8_BYTES) == len(text.encode("utf-8"))
    assert measure(text, TextUnit.UTF16_UNITS) == len(text.encode("utf-16-le")) // 2
