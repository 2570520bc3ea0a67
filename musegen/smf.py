"""MIDI channels, the one thing symusic does not keep.

symusic reads a Standard MIDI File into tracks split by (MIDI track, channel, program) but
forgets the channel, and writes track i on a channel of its own choosing. A DAW's clip on
channel 5 must come back on channel 5, so this module does the two small jobs symusic does
not: read which channel each of symusic's tracks came from, and rewrite the channel of every
channel message of a written file's tracks. Hand-written (a walk over the track chunks, the
event framing of the SMF spec) because mido, which could do it, parses ~4 us per byte in pure
Python: 200 ms for a 50 kB file, on every request.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(chunk type, start of its data, end of its data) for every chunk after the header."""
    pos = 0
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        start, end = pos + 8, min(len(data), pos + 8 + size)
        yield kind, start, end
        pos = end


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    while pos < end:
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return value, pos


def _channel_messages(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(offset of the explicit status byte or -1 under running status, status, data1, data2)
    for every channel message of one track chunk."""
    pos, running = start, 0
    while pos < end:
        _, pos = _vlq(data, pos, end)
        if pos >= end:
            return
        b = data[pos]
        if b == 0xFF:  # meta: type, length, data
            length, pos = _vlq(data, pos + 2, end)
            pos += length
            running = 0
            continue
        if b in (0xF0, 0xF7):  # sysex: length, data
            length, pos = _vlq(data, pos + 1, end)
            pos += length
            running = 0
            continue
        if b & 0x80:
            status, at = b, pos
            pos += 1
            running = status if status < 0xF0 else 0
        elif running:
            status, at = running, -1
        else:
            return  # a data byte with no status in force: the chunk is corrupt from here
        if status >= 0xF0:  # system common without length framing: stop rather than guess
            return
        n = _DATA_BYTES[status >> 4]
        d1 = data[pos] if pos < end else 0
        d2 = data[pos + 1] if n == 2 and pos + 1 < end else 0
        pos += n
        yield at, status, d1, d2


def note_groups(data: bytes) -> list[tuple[int, int, int, int]]:
    """(track chunk, channel, program, note-ons) for every group of notes, in the order
    symusic lists its tracks: by track chunk, then channel, then program at the note-on."""
    groups: dict[tuple[int, int, int], int] = {}
    for t, (_, start, end) in enumerate(c for c in _chunks(data) if c[0] == b"MTrk"):
        program = [0] * 16
        for _, status, d1, d2 in _channel_messages(data, start, end):
            ch = status & 0x0F
            if status >> 4 == 0xC:
                program[ch] = d1
            elif status >> 4 == 0x9 and d2 > 0:
                key = (t, ch, program[ch])
                groups[key] = groups.get(key, 0) + 1
    return [(t, ch, p, n) for (t, ch, p), n in sorted(groups.items())]


def with_channels(data: bytes, channels: list[int | None]) -> bytes:
    """`data` with every channel message of track chunk i moved to `channels[i]` (None: left
    as written). Lengths do not change: only the low nibble of status bytes is rewritten."""
    out = bytearray(data)
    chunks = [c for c in _chunks(data) if c[0] == b"MTrk"]
    for (_, start, end), ch in zip(chunks, channels):
        if ch is None:
            continue
        if not 0 <= ch <= 15:
            raise ValueError(f"channel must be in 0..15, got {ch}")
        for at, status, _, _ in _channel_messages(data, start, end):
            if at >= 0:
                out[at] = (status & 0xF0) | ch
    return bytes(out)


__all__ = ["note_groups", "with_channels"]
