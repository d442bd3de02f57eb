"""Test documents built on the fly (shared by unit, integration and browser tests and `bench/`).

Besides real Word documents: hostile ones, the shapes a review used to exhaust the counter
(nesting, one huge attribute, dense paragraphs), and zips broken in each way a zip breaks.
XML is produced as a stream of chunks and written through `zipfile` as it comes, so a
benchmark can build a 128 MiB document without holding it.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCUMENT = "word/document.xml"
_BLOCK = 1 << 20


def docx_bytes(*paragraphs: str) -> bytes:
    """A real Word document (python-docx) with one paragraph per argument."""
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_docx(
    target: BinaryIO,
    xml: Iterable[bytes],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    extra: dict[str, bytes] | None = None,
) -> None:
    """A minimal .docx into `target` whose `word/document.xml` is the concatenated `xml`."""
    with zipfile.ZipFile(
        target, "w", compression, compresslevel=9 if compression == zipfile.ZIP_DEFLATED else None
    ) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(DOCUMENT, "w", force_zip64=False) as part:
            for chunk in xml:
                part.write(chunk)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)


def docx_of_xml(xml: Iterable[bytes] | bytes, **options: object) -> bytes:
    buffer = io.BytesIO()
    write_docx(buffer, [xml] if isinstance(xml, bytes) else xml, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def body(inner: str) -> bytes:
    return f'<?xml version="1.0"?><w:document {W}><w:body>{inner}</w:body></w:document>'.encode()


def _repeated(unit: bytes, total: int, noise: bytes = b"", every: int = 0) -> Iterator[bytes]:
    """`total` bytes of `unit`; with `every`, one in `every` units is `noise` with its `%s` made
    random, which keeps deflate's ratio under the counter's zip-bomb guard (seeded: repeatable)."""
    rng = random.Random(14)
    produced = 0
    while produced < total:
        units = max(1, min(_BLOCK, total - produced) // len(unit))
        if every:
            parts = [unit] * units
            for at in range(0, units, every):
                parts[at] = noise % b"%08X" % rng.getrandbits(32)
            block = b"".join(parts)
        else:
            block = unit * units
        produced += len(block)
        yield block


# --- bombs: XML that is cheap to compress and expensive to parse ---------------------------
# `every` (see `_repeated`): 0 for stored zips; the benchmark picks it to sit just under the guard.


def nested_tags(total: int, every: int = 0) -> Iterator[bytes]:
    """`total` bytes of open tags that never close (expat keeps every open element)."""
    yield f"<w:document {W}><w:body>".encode()
    yield from _repeated(b"<w:p>", total, b'<w:r w:rsidR="%s">', every)


def long_attribute(total: int, every: int = 0) -> Iterator[bytes]:
    """One attribute of `total` bytes (expat holds a start tag whole before reporting it)."""
    yield f'<w:document {W}><w:body><w:p w:rsidR="'.encode()
    yield from _repeated(b"A", total, b"%s", every)
    yield b'"/></w:body></w:document>'


def long_comment(total: int, every: int = 0) -> Iterator[bytes]:
    yield f"<w:document {W}><w:body><!--".encode()
    yield from _repeated(b"-x", total, b"%s", every)
    yield b"--></w:body></w:document>"


def dense_paragraphs(total: int, every: int = 0) -> Iterator[bytes]:
    """`total` bytes of empty paragraphs: two parser callbacks per 6 bytes."""
    yield f"<w:document {W}><w:body>".encode()
    yield from _repeated(b"<w:p/>", total, b'<w:p w:rsidR="%s"/>', every)
    yield b"</w:body></w:document>"


def nested_namespaces(depth: int, uri_chars: int) -> Iterator[bytes]:
    """Open elements each binding a long namespace URI (expat keeps bindings in scope)."""
    yield f"<w:document {W}><w:body>".encode()
    uri = b"urn:" + b"n" * uri_chars
    for level in range(depth):
        yield b'<w:p xmlns:n%d="%s">' % (level, uri)


def many_entries(count: int) -> bytes:
    """A zip with a document and `count` one-byte parts (zipfile builds an object per entry)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(DOCUMENT, body(""))
        for number in range(count):
            archive.writestr(f"{number:x}", b"")
    return buffer.getvalue()


# --- broken zips ----------------------------------------------------------------------------


def _patch(data: bytes, *, local: int, central: int, value: bytes, name: str = DOCUMENT) -> bytes:
    """Overwrite a field of `name`'s local header (at offset `local`) and directory record."""
    patched = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    patched[info.header_offset + local : info.header_offset + local + len(value)] = value
    record = data.find(b"PK\x01\x02")
    while record >= 0:
        name_length = struct.unpack_from("<H", data, record + 28)[0]
        if data[record + 46 : record + 46 + name_length] == name.encode():
            patched[record + central : record + central + len(value)] = value
            return bytes(patched)
        record = data.find(b"PK\x01\x02", record + 4)
    raise ValueError(f"no directory record for {name}")


def encrypted(data: bytes) -> bytes:
    """The document entry flagged as encrypted (what a password-protected zip has)."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(DOCUMENT)
    return _patch(data, local=6, central=8, value=struct.pack("<H", info.flag_bits | 0x1))


def unknown_compression(data: bytes, method: int = 99) -> bytes:
    return _patch(data, local=8, central=10, value=struct.pack("<H", method))


def bad_crc(data: bytes) -> bytes:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(DOCUMENT)
    return _patch(data, local=14, central=16, value=struct.pack("<I", info.CRC ^ 0xFFFFFFFF))


def corrupt_deflate(data: bytes) -> bytes:
    """The document's deflate stream replaced by bytes that are no deflate data (zlib.error)."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(DOCUMENT)
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return data[:start] + b"\xff" * info.compress_size + data[start + info.compress_size :]


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def zip64_locator(data: bytes) -> bytes:
    """A zip64 locator before the end record: `zipfile` would take the directory's size from
    the zip64 record it points to, not from the end record a pre-check reads."""
    end = data.rfind(b"PK\x05\x06")
    return data[:end] + b"PK\x06\x07" + bytes(16) + data[end:]
