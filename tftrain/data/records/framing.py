"""TFRecord framing checked in Python before TensorFlow reads a file (issue 34).

A TFRecord is `uint64 length, uint32 crc, length bytes, uint32 crc`. TensorFlow's record reader
allocates what the length field claims: a field claiming a terabyte, or a gzip'd shard whose one
record inflates to gigabytes, kills the process (SIGSEGV, no message). Walking the length fields
first (a seek per record; a streaming inflate for gzip, never holding a record) bounds every
record by the bytes the file has left and by MAX_RECORD_BYTES, one line naming file and record.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from tftrain.errors import DataError

MAX_RECORD_BYTES = 256 * 2**20  # one serialized example; far above any image or row, far below a crash
HEADER = 12  # uint64 length + uint32 masked crc of the length
FOOTER = 4  # uint32 masked crc of the data
INFLATE_CHUNK = 4 * 2**20  # bytes of inflated data held at once while walking a gzip'd file


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)
    return table


_CRC32C = _crc_table()


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data` (here only the 8-byte length fields)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_framing(path: Path, compression: str) -> int:
    """Walk `path`'s record headers; the record count, or a DataError naming file and record."""
    try:
        if compression == "GZIP":
            return _walk(path, _inflated(path), None)
        size = path.stat().st_size
        with open(path, "rb") as f:
            return _walk(path, None, (f, size))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _too_big(path: Path, index: int, offset: int, length: int, left: int | None) -> DataError | None:
    if left is not None and length + FOOTER > left:
        return DataError(f"{path}: truncated record at {offset}: record {index}'s length field claims "
                         f"{length:,} bytes, but the file has {max(left - FOOTER, 0):,} left")
    if length > MAX_RECORD_BYTES:
        return DataError(f"{path}: record {index} (at byte {offset}) holds {length:,} bytes; a record is at most "
                         f"{MAX_RECORD_BYTES // 2**20} MiB (split it, or store the array in several features)")
    return None


def _walk(path: Path, stream, plain) -> int:
    """Count records, reading headers from a plain file (seeking past data) or an inflated stream."""
    index = offset = 0
    while True:
        if plain is not None:
            f, size = plain
            header = f.read(HEADER)
        else:
            header = stream.read(HEADER)
        if not header:
            return index
        if len(header) < HEADER:
            raise DataError(f"{path}: truncated record at {offset}: record {index} has a {len(header)}-byte header")
        length, check = struct.unpack("<QI", header)
        if masked_crc(header[:8]) != check:  # a damaged length field: its size means nothing
            raise DataError(f"{path}: corrupted record at {offset}: record {index}'s length field fails its checksum")
        left = size - offset - HEADER if plain is not None else None
        problem = _too_big(path, index, offset, length, left)
        if problem is not None:
            raise problem
        if plain is not None:
            f.seek(length + FOOTER, 1)
        elif stream.skip(length + FOOTER) < length + FOOTER:
            raise DataError(f"{path}: truncated record at {offset}: record {index}'s length field claims "
                            f"{length:,} bytes, more than the inflated file holds")
        offset += HEADER + length + FOOTER
        index += 1


class _inflated:
    """A gzip file's inflated bytes, read or skipped a bounded chunk at a time (members chained,
    as TensorFlow's reader does)."""

    def __init__(self, path: Path):
        self.path, self.file = path, open(path, "rb")  # noqa: SIM115 (closed at end of stream)
        self.inflater = zlib.decompressobj(31)
        self.buffer, self.pos, self.pending = b"", 0, b""

    def _more(self) -> bool:
        """Inflate at most INFLATE_CHUNK more bytes into the buffer; False at the end of the file."""
        try:
            if self.inflater.eof:  # the next gzip member starts where this one ended
                self.pending, self.inflater = self.inflater.unused_data + self.pending, zlib.decompressobj(31)
            if self.inflater.unconsumed_tail:
                raw = self.inflater.unconsumed_tail
            else:
                raw, self.pending = self.pending or self.file.read(2**20), b""
            if not raw:
                self.file.close()
                return False
            data = self.inflater.decompress(raw, INFLATE_CHUNK)
        except zlib.error as exc:
            self.file.close()
            raise DataError(f"{self.path}: not a valid gzip stream ({exc})") from None
        self.buffer, self.pos = self.buffer[self.pos:] + data, 0
        return True

    def read(self, n: int) -> bytes:
        while len(self.buffer) - self.pos < n and self._more():
            pass
        out = self.buffer[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def skip(self, n: int) -> int:
        skipped = 0
        while skipped < n:
            if self.pos >= len(self.buffer) and not self._more():
                break
            take = min(n - skipped, len(self.buffer) - self.pos)
            self.pos += take
            skipped += take
        return skipped
