"""What an uploaded alert sound is, by its first bytes (never by its name or declared type).

Only the formats every browser source plays: MP3, Ogg, WAV and WebM. Written by hand: the
signatures are four well-known ones, and a library (``filetype``, ``python-magic``) would add a
dependency (libmagic, for the latter) for them.
"""

from __future__ import annotations

from typing import Final

MAX_SOUND_BYTES: Final = 1024 * 1024
"""An alert sound is at most 1 MiB."""
AUDIO_TYPES: Final = ("audio/mpeg", "audio/ogg", "audio/wav", "audio/webm")
EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
WEBM_DOCTYPE: Final = b"\x42\x82\x84webm"
"""The EBML DocType element saying ``webm`` (Matroska audio, ``.mka``, says ``matroska``)."""
EBML_HEADER_SCAN: Final = 64


def audio_type(data: bytes) -> str | None:
    """The content type of ``data`` by its magic bytes, among ``AUDIO_TYPES``; None for
    anything else."""
    if data[:3] == b"ID3" or _mpeg_frame(data):
        return "audio/mpeg"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == EBML_MAGIC and WEBM_DOCTYPE in data[:EBML_HEADER_SCAN]:
        return "audio/webm"
    return None


def _mpeg_frame(data: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version and layer (not ADTS AAC,
    whose layer bits are 00), a bitrate index that is neither free nor bad, a known rate."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version = (data[1] >> 3) & 0b11
    layer = (data[1] >> 1) & 0b11
    bitrate = data[2] >> 4
    rate = (data[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate not in (0b0000, 0b1111) and rate != 0b11
