"""Count words the way the contract defines them, streaming, with memory bounded by the chunk size.

The rule: decode the text (UTF-8 with or without BOM, UTF-16 with BOM, any other bytes as
cp1252), then count what Python's `str.split()` splits it into. For `.docx`, the text of
`word/document.xml`: runs of one paragraph join, paragraphs, tabs and breaks separate words,
tables included. A file that is not what its extension says raises `Unreadable`.
"""

from __future__ import annotations

import codecs
import re
import struct
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Literal

if TYPE_CHECKING:  # imported lazily at run time: only the .docx path needs them
    import zipfile

Kind = Literal["txt", "docx"]
CHUNK_BYTES = 1 << 20
# .docx guards: checked against the archive's directory before inflating, then while inflating.
MAX_ZIP_ENTRIES = 2_000
MAX_DOCUMENT_XML_BYTES = 256 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
MAX_CENTRAL_DIRECTORY_BYTES = 1 << 20  # ~20,000 entries; a Word document's is a few KiB
# Parser guards (see `_DocumentReader`); Word's own documents stay far below each.
FEED_BYTES = 1 << 16  # expat is given this much at a time, so a long token is seen growing
MAX_TOKEN_BYTES = 1 << 20  # one tag with its attributes, one comment or processing instruction
MAX_ELEMENT_DEPTH = 256  # Word nests tables in tables and text boxes in shapes: tens of levels
MAX_NAME_CHARS = 512  # an element's namespace URI plus its local name
MAX_NAMESPACE_BYTES = 1 << 16  # namespace bindings in scope at once
_BINDING_OVERHEAD = 64  # what an in-scope binding costs beyond its characters, roughly
MAX_PARSE_SECONDS = 5.0  # CPU; the largest real document here takes under 1 s
_END_RECORD = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_BYTES = 20
_ENCRYPTED = 0x1  # general-purpose flag bit 0 of a zip entry
# C0 controls that text does not contain (tab, newlines, escape and the separators \x1c-\x1f do).
CONTROL_CHARS = frozenset(chr(c) for c in range(28)) - set("\t\n\v\f\r\x1b")
MAX_CONTROL_SHARE = 0.1  # of the first chunk: more than this is binary, not text

# What `str.split()` splits on. ASCII ones map to one byte; the others are found in UTF-8 as
# byte sequences (hard-coded: computing them at import would cost a cold start ~100 ms;
# a test checks this list against `str.isspace`).
ASCII_WHITESPACE = " \t\n\v\f\r\x1c\x1d\x1e\x1f"
UNICODE_WHITESPACE = "\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_WORD_BYTES = bytes.maketrans(bytes(range(256)), bytes(32 if chr(b) in ASCII_WHITESPACE else 120 for b in range(256)))
_UTF8_WHITESPACE = re.compile(b"|".join(re.escape(char.encode()) for char in UNICODE_WHITESPACE))
_UTF8_WHITESPACE_LEADS = tuple({char.encode()[:1] for char in UNICODE_WHITESPACE})

WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TEXT = f"{WORD_NS} t"
_SEPARATORS = frozenset(f"{WORD_NS} {name}" for name in ("p", "tab", "br", "cr"))


class Unreadable(Exception):
    """The file is not what its extension says; `reason` is shown to its owner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WordCounter:
    """`str.split()` semantics over text fed in pieces: a word cut between pieces counts once."""

    def __init__(self) -> None:
        self.words = 0
        self._inside_word = False

    def feed(self, text: str) -> None:
        if not text:
            return
        words = len(text.split())
        if self._inside_word and not text[0].isspace() and words:
            words -= 1  # the first token continues the previous piece's last word
        self.words += words
        self._inside_word = not text[-1].isspace()

    def separate(self) -> None:
        self._inside_word = False


class Utf8WordCounter:
    """The same count straight from UTF-8 bytes, several times faster than decoding and splitting.

    Every whitespace byte (or multi-byte whitespace sequence) becomes a space, every other byte
    an `x`; the words are then the `" x"` pairs, plus a word at the start of a piece.
    """

    def __init__(self) -> None:
        self.words = 0
        self._inside_word = False

    def feed(self, data: bytes) -> None:
        """`data` must end on a character boundary (see `_utf8_pieces`)."""
        if not data:
            return
        if any(lead in data for lead in _UTF8_WHITESPACE_LEADS):
            data = _UTF8_WHITESPACE.sub(b" ", data)
        marks = data.translate(_WORD_BYTES)
        self.words += marks.count(b" x") + (marks[0] == 120 and not self._inside_word)
        self._inside_word = marks[-1] == 120


def count_words(file: IO[bytes], kind: Kind, *, chunk_bytes: int = CHUNK_BYTES) -> int:
    if kind == "txt":
        return count_text(file, chunk_bytes=chunk_bytes)
    if kind == "docx":
        return count_docx(file, chunk_bytes=chunk_bytes)
    raise ValueError(f"unsupported kind {kind!r}")


# --- plain text ------------------------------------------------------------------------


def _encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark announces, or None."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the decoder reads the BOM and picks the byte order
    return None


def _decoded(file: IO[bytes], encoding: str, chunk_bytes: int) -> Iterator[str]:
    file.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict" if encoding.startswith("utf") else "replace")
    while chunk := file.read(chunk_bytes):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _count_decoded(pieces: Iterator[str]) -> int:
    counter = WordCounter()
    first = True
    for text in pieces:
        if first and text:
            _refuse_binary(text)
            first = False
        if "\x00" in text:
            raise Unreadable("The file contains binary data, not text.")
        counter.feed(text)
    return counter.words


def _refuse_binary(sample: str) -> None:
    controls = sum(1 for char in sample[:65536] if char in CONTROL_CHARS)
    if controls > MAX_CONTROL_SHARE * min(len(sample), 65536):
        raise Unreadable("The file contains binary data, not text.")


def _utf8_pieces(file: IO[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """Chunks of valid UTF-8 cut on character boundaries; UnicodeDecodeError if not UTF-8."""
    file.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    carry = b""
    while chunk := file.read(chunk_bytes):
        decoder.decode(chunk)  # validates; the text itself is not needed
        data = carry + chunk
        cut = _last_boundary(data)
        carry = data[cut:]
        yield data[:cut]
    decoder.decode(b"", final=True)
    yield carry


def _last_boundary(data: bytes) -> int:
    """Index after the last complete UTF-8 character (a multi-byte one may straddle chunks)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: complete only if its sequence fits
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= needed else len(data) - back
    return len(data)


def _count_utf8(file: IO[bytes], chunk_bytes: int) -> int:
    counter = Utf8WordCounter()
    first = True
    for piece in _utf8_pieces(file, chunk_bytes):
        if first and piece:
            _refuse_binary(piece[:65536].decode("utf-8", errors="ignore"))
            first = False
        if b"\x00" in piece:
            raise Unreadable("The file contains binary data, not text.")
        counter.feed(piece)
    return counter.words


def count_text(file: IO[bytes], *, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Words of a text file: BOM-announced encoding, else UTF-8, else (restarting) cp1252."""
    file.seek(0)
    announced = _encoding(file.read(4))
    if announced:
        try:
            return _count_decoded(_decoded(file, announced, chunk_bytes))
        except UnicodeDecodeError:
            raise Unreadable(f"The file announces {announced} but is not valid {announced}.") from None
    try:
        return _count_utf8(file, chunk_bytes)
    except UnicodeDecodeError:
        # Not UTF-8 somewhere: the contract reads such bytes as cp1252, from the start. Its five
        # undefined bytes decode to U+FFFD, which (like any letter) is part of a word.
        return _count_decoded(_decoded(file, "cp1252", chunk_bytes))


# --- .docx -----------------------------------------------------------------------------


def _central_directory_bytes(file: IO[bytes]) -> int:
    """The zip directory's size as its end record states it, found the way `zipfile` finds it
    (a record at the very end, else the last one in the trailing comment's reach), so that the
    directory can be refused before `zipfile` reads it whole and builds an object per entry.
    A zip64 locator before the record (whose sizes `zipfile` would use instead) is refused:
    Word never writes zip64."""
    file.seek(0, 2)
    start = max(0, file.tell() - _END_RECORD_BYTES - 0xFFFF)
    file.seek(start)
    tail = file.read()
    at = len(tail) - _END_RECORD_BYTES
    if not (at >= 0 and tail.startswith(_END_RECORD, at) and tail.endswith(b"\0\0")):
        at = tail.rfind(_END_RECORD)
    if at < 0 or len(tail) - at < _END_RECORD_BYTES:
        raise Unreadable("The file is not a Word document (not a zip archive).")
    if start + at >= _ZIP64_LOCATOR_BYTES:
        file.seek(start + at - _ZIP64_LOCATOR_BYTES)
        if file.read(len(_ZIP64_LOCATOR)) == _ZIP64_LOCATOR:
            raise Unreadable("The file is a zip64 archive, which Word documents never are.")
    (directory_bytes,) = struct.unpack_from("<I", tail, at + 12)
    return int(directory_bytes)


def _checked_document_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """`word/document.xml`'s zip entry after the pre-inflation guards (entries, size, ratio)."""
    import zipfile

    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Unreadable("The document has too many parts to be a Word document.")
    try:
        info = archive.getinfo("word/document.xml")
    except KeyError:
        raise Unreadable("The file is not a Word document (no word/document.xml).") from None
    if info.flag_bits & _ENCRYPTED:
        raise Unreadable("The document is encrypted (password-protected); save it without a password.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Unreadable("The document is compressed in a way Word documents never are.")
    if info.file_size > MAX_DOCUMENT_XML_BYTES:
        raise Unreadable("The document is too large once unpacked.")
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) and info.file_size > CHUNK_BYTES:
        raise Unreadable("The document is compressed suspiciously well (a zip bomb?).")
    return info


def _xml_chunks(stream: IO[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """Inflated bytes, refusing to go past the limit whatever the zip header claimed."""
    inflated = 0
    while chunk := stream.read(chunk_bytes):
        inflated += len(chunk)
        if inflated > MAX_DOCUMENT_XML_BYTES:
            raise Unreadable("The document is too large once unpacked.")
        yield chunk


class _DocumentReader:
    """An expat parser that feeds `w:t` text to a counter, with every resource it spends bounded.

    expat keeps a token it has not finished (a start tag with its attributes, a comment) in
    its buffer until the token ends, and keeps every open element's name and namespace
    bindings: without limits one long attribute or millions of open tags take hundreds of
    MiB. So it is fed in small pieces and, after each, the bytes it holds undelivered (fed
    minus `CurrentByteIndex`, which outside callbacks is the end of the last event) are
    capped, as are the depth, the names, the namespaces in scope and the CPU time.
    """

    def __init__(self, counter: WordCounter) -> None:
        from xml.parsers import expat

        self.counter = counter
        self.parser = parser = expat.ParserCreate(namespace_separator=" ")
        self.depth = 0
        self.in_text = False
        self.namespaces: list[int] = []  # bytes of each binding in scope
        self.namespace_bytes = 0
        self.fed = 0
        self.started = time.thread_time()
        parser.StartDoctypeDeclHandler = self._refuse_dtd
        parser.EntityDeclHandler = self._refuse_dtd
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.StartNamespaceDeclHandler = self._bind
        parser.EndNamespaceDeclHandler = self._unbind
        parser.ordered_attributes = True  # a list, not a dict: cheaper for attributes never read
        parser.buffer_text = True
        parser.buffer_size = 1 << 16

    def feed(self, piece: bytes) -> None:
        """One piece of at most `FEED_BYTES`, so that a growing token is seen growing."""
        self.parser.Parse(piece, False)
        self.fed += len(piece)
        if self.fed - max(self.parser.CurrentByteIndex, 0) > MAX_TOKEN_BYTES:
            raise Unreadable("The document holds a tag, attribute or comment too long for a Word document.")
        if time.thread_time() - self.started > MAX_PARSE_SECONDS:
            raise Unreadable("The document takes too long to read (it looks built to exhaust the reader).")

    def close(self) -> None:
        self.parser.Parse(b"", True)

    @staticmethod
    def _refuse_dtd(*_: object) -> None:
        raise Unreadable("The document declares a DTD or entities, which Word documents never do.")

    def _start(self, name: str, _attributes: object) -> None:
        self.depth += 1
        if self.depth > MAX_ELEMENT_DEPTH:
            raise Unreadable("The document's elements are nested too deeply for a Word document.")
        if len(name) > MAX_NAME_CHARS:
            raise Unreadable("The document holds an element name too long for a Word document.")
        if name == _TEXT:
            self.in_text = True
        elif name in _SEPARATORS:
            self.counter.separate()

    def _end(self, name: str) -> None:
        self.depth -= 1
        if name == _TEXT:
            self.in_text = False
        elif name in _SEPARATORS:
            self.counter.separate()

    def _text(self, data: str) -> None:
        if self.in_text:
            self.counter.feed(data)

    def _bind(self, prefix: str | None, uri: str | None) -> None:
        cost = len(prefix or "") + len(uri or "") + _BINDING_OVERHEAD
        self.namespaces.append(cost)
        self.namespace_bytes += cost
        if self.namespace_bytes > MAX_NAMESPACE_BYTES:
            raise Unreadable("The document declares more namespaces than a Word document does.")

    def _unbind(self, _prefix: str | None) -> None:
        self.namespace_bytes -= self.namespaces.pop()


def count_docx(file: IO[bytes], *, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Words of `word/document.xml`, inflated and parsed in pieces; every way a zip or its XML
    can be broken (bad deflate data, bad CRC, truncation, encryption) is `Unreadable`."""
    import zipfile
    import zlib
    from xml.parsers import expat

    if _central_directory_bytes(file) > MAX_CENTRAL_DIRECTORY_BYTES:
        raise Unreadable("The document has too many parts to be a Word document.")
    file.seek(0)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
        raise Unreadable("The file is not a Word document (not a zip archive).") from None
    with archive:
        info = _checked_document_entry(archive)
        counter = WordCounter()
        reader = _DocumentReader(counter)
        try:
            with archive.open(info) as stream:
                for chunk in _xml_chunks(stream, min(chunk_bytes, FEED_BYTES)):
                    reader.feed(chunk)
                reader.close()
        except expat.ExpatError:
            raise Unreadable("The document's text is not valid XML.") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError):
            raise Unreadable("The document is damaged and cannot be unpacked.") from None
    return counter.words
