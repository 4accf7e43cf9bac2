"""The media formats we accept: their MIME types, magic bytes, and image dimensions from headers.

The declared type of an upload is a claim; the first bytes are the fact. Every accepted format is
recognised by its signature, and an image's width and height are read from its header without an
imaging library: a few fixed offsets for PNG, GIF and WebP, a marker walk for JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MediaKind(str, Enum):
    IMAGE = "image"
    GIF = "gif"
    VIDEO = "video"
    DOCUMENT = "document"


@dataclass(frozen=True)
class MediaType:
    mime: str
    kind: MediaKind
    extensions: tuple[str, ...]  # the first is the one we give a file that has none


ACCEPTED_TYPES: dict[str, MediaType] = {
    media_type.mime: media_type
    for media_type in (
        MediaType("image/jpeg", MediaKind.IMAGE, (".jpg", ".jpeg")),
        MediaType("image/png", MediaKind.IMAGE, (".png",)),
        MediaType("image/webp", MediaKind.IMAGE, (".webp",)),
        MediaType("image/gif", MediaKind.GIF, (".gif",)),
        MediaType("video/mp4", MediaKind.VIDEO, (".mp4", ".m4v")),
        MediaType("video/quicktime", MediaKind.VIDEO, (".mov",)),
        MediaType("application/pdf", MediaKind.DOCUMENT, (".pdf",)),
    )
}
# Names clients send for an accepted type.
MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
# "I don't know": the type is then taken from the content alone.
GENERIC_MIME_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

# Enough leading bytes to recognise every signature below.
SNIFF_BYTES = 16
# Enough to find a JPEG's frame header behind an EXIF block of up to 64 KiB (and a thumbnail).
HEADER_BYTES = 256 * 1024

# ISO base media file brands that are MP4 video (not HEIC stills, AVIF or M4A audio).
MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"mmp4", b"MSNV"}
)
# The first atom of a QuickTime file written before `ftyp` existed.
CLASSIC_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
# JPEG start-of-frame markers (C4 = DHT, C8 = JPG extension, CC = DAC are not frames).
JPEG_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# JPEG markers with no length field.
JPEG_STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


def normalize_mime(value: str | None) -> str:
    """``Image/JPG; charset=x`` → ``image/jpeg``: parameters dropped, lower case, aliases resolved."""
    mime = (value or "").split(";", 1)[0].strip().lower()
    return MIME_ALIASES.get(mime, mime)


def sniff_mime(head: bytes) -> str | None:
    """The accepted type these leading bytes are the signature of, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in MP4_BRANDS:
            return "video/mp4"
        return None
    if box in CLASSIC_QUICKTIME_ATOMS:
        return "video/quicktime"
    return None


def _u16be(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def _u16le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _png_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _gif_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 10:
        return None
    return _u16le(head, 6), _u16le(head, 8)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":  # lossy key frame
        return _u16le(head, 26) & 0x3FFF, _u16le(head, 28) & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:  # lossless: two 14-bit fields
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:  # extended: 24-bit canvas size, minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Walk the marker segments to the first start-of-frame, which holds height then width."""
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            at += 2
            continue
        if marker in JPEG_FRAME_MARKERS:
            if at + 9 > len(head):
                return None
            return _u16be(head, at + 7), _u16be(head, at + 5)
        at += 2 + _u16be(head, at + 2)
    return None


DIMENSION_READERS = {"image/png": _png_size, "image/gif": _gif_size, "image/webp": _webp_size, "image/jpeg": _jpeg_size}


def image_dimensions(mime: str, head: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header bytes, or None when not found in ``head``."""
    reader = DIMENSION_READERS.get(mime)
    size = reader(head) if reader else None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size
