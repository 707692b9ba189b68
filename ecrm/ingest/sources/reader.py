"""Streaming CSV reading: encoding detection (UTF-8, UTF-8 with BOM, GB18030 for Chinese shops'
GBK exports), delimiter sniffing, and rows as (spreadsheet row number, cells) one at a time, so a
file of any size is read in constant memory."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLE_BYTES = 1024 * 1024


class UnreadableFile(ValueError):
    """The file is not a CSV we can read at all (wrong encoding, binary, empty)."""


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig when there is a BOM; utf-8 when the sample decodes as UTF-8; else GB18030 (a
    superset of GBK and GB2312, what Excel and Chinese shop back-ends export)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        decoder.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        raise UnreadableFile("The file is neither UTF-8 nor GB18030/GBK text.") from None


@dataclass
class CsvSource:
    """An open CSV file: its header, encoding and dialect, and an iterator over data rows."""

    header: list[str]
    encoding: str
    delimiter: str
    _binary: BinaryIO
    _text: io.TextIOWrapper
    _reader: Iterator[list[str]]
    size: int

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number as a spreadsheet shows it, header = 1; cells) for every non-blank data row."""
        row_no = 1
        try:
            for cells in self._reader:
                row_no += 1
                if not cells or all(not c.strip() for c in cells):
                    continue
                yield row_no, cells
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"Row {row_no + 1} is not valid {self.encoding} text: {exc.reason}.") from None
        except csv.Error as exc:
            raise UnreadableFile(f"Row {row_no + 1} is not valid CSV: {exc}.") from None

    def bytes_read(self) -> int:
        """How far into the file reading has got (approximate: the text layer reads ahead)."""
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_csv(path: str | Path, *, encoding: str | None = None) -> CsvSource:
    """Open a CSV file for streaming. Raises UnreadableFile when it cannot be read at all."""
    try:
        binary = open(path, "rb")  # noqa: SIM115 - closed by CsvSource.close
    except OSError as exc:
        raise UnreadableFile(f"Cannot open {path}: {exc.strerror}.") from None
    try:
        size = Path(path).stat().st_size
        sample = binary.read(SAMPLE_BYTES)
        if not sample.strip():
            raise UnreadableFile("The file is empty.")
        if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise UnreadableFile("This is not a CSV file (it contains binary data).")
        encoding = encoding or detect_encoding(sample)
        binary.seek(0)
        text = io.TextIOWrapper(binary, encoding=encoding, newline="")
        delimiter = _sniff_delimiter(sample, encoding)
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise UnreadableFile("The file is empty.") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UnreadableFile(f"The header row cannot be read: {exc}.") from None
        header = [h.strip() for h in header]
        if not any(header):
            raise UnreadableFile("The first row must name the columns.")
        return CsvSource(header, encoding, delimiter, binary, text, reader, size)
    except BaseException:
        binary.close()
        raise


def _sniff_delimiter(sample: bytes, encoding: str) -> str:
    # Only the header line decides: sniffing the whole sample is slow and fooled by free text.
    first_line = sample.split(b"\n", 1)[0].decode(encoding, errors="ignore")
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def estimate_rows(path: str | Path) -> int:
    """Data rows in the file, counted by newlines (a quoted multi-line cell counts extra): fast
    enough for a 1,000,000-row file (well under a second), used for progress bars only."""
    lines = 0
    last = b""
    with open(path, "rb") as fh:
        while block := fh.read(4 * 1024 * 1024):
            lines += block.count(b"\n")
            last = block
    if last and not last.endswith(b"\n"):
        lines += 1
    return max(lines - 1, 0)
