"""The word counter against hand-built files: every encoding, chunk boundaries, docx shapes, bombs."""

from __future__ import annotations

import io
import zipfile

import pytest

from chalicelib.files import wordcount
from chalicelib.files.wordcount import Unreadable, count_words
from tests import documents
from tests.documents import W, docx_of_xml

SAMPLE = "The quick\tbrown fox\njumps — over\u3000the\xa0lazy dog. আমার সোনার বাংলা"


def _txt(data: bytes, chunk_bytes: int = wordcount.CHUNK_BYTES) -> int:
    return count_words(io.BytesIO(data), "txt", chunk_bytes=chunk_bytes)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_text_encodings_count_like_str_split(encoding: str) -> None:
    data = SAMPLE.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        data = ("\ufeff" + SAMPLE).encode(encoding)  # with its BOM, as the contract requires
    assert _txt(data) == len(SAMPLE.split()) == 13


def test_cp1252_bytes_are_read_as_cp1252() -> None:
    text = "“Smart quotes” café – naïve"
    assert _txt(text.encode("cp1252")) == len(text.split()) == 5


def test_invalid_utf8_late_in_the_file_restarts_as_cp1252() -> None:
    data = ("word " * 5000).encode() + "déjà vu".encode("cp1252")
    assert _txt(data, chunk_bytes=1024) == 5002


def test_cp1252_undefined_bytes_are_word_characters() -> None:
    assert _txt(b"a\x81b c\x9d") == 2


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 64])
def test_words_cut_by_chunk_boundaries_count_once(chunk_bytes: int) -> None:
    text = "alpha  beta\n\ngamma আমার\u2003delta   "
    assert _txt(text.encode(), chunk_bytes=chunk_bytes) == len(text.split())


def test_multibyte_characters_split_across_chunks() -> None:
    text = "বাংলা ভাষা " * 100
    assert _txt(text.encode(), chunk_bytes=5) == 200


@pytest.mark.parametrize("data", [b"", b"   \n\t ", "\ufeff".encode()])
def test_empty_or_blank_text_counts_zero(data: bytes) -> None:
    assert _txt(data) == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,
        b"text then a NUL\x00 byte",
        bytes(range(32)) * 100,
    ],
)
def test_binary_named_txt_is_unreadable(data: bytes) -> None:
    with pytest.raises(Unreadable, match="binary"):
        _txt(data)


def test_utf16_bom_with_odd_garbage_is_unreadable() -> None:
    with pytest.raises(Unreadable):
        _txt(b"\xff\xfe" + b"a\x00" * 10 + b"\x00\xd8")  # a lone surrogate


# --- .docx -----------------------------------------------------------------------------


def _docx(inner: str, *, extra: dict[str, bytes] | None = None, document: str | None = None) -> io.BytesIO:
    xml = document.encode() if document is not None else documents.body(inner)
    return io.BytesIO(docx_of_xml(xml, extra=extra))


def _docx_count(inner: str) -> int:
    return count_words(_docx(inner), "docx")


def test_docx_runs_of_one_paragraph_join() -> None:
    body = (
        "<w:p><w:r><w:t>Hel</w:t></w:r><w:r><w:t>lo</w:t></w:r><w:r><w:t xml:space='preserve'> world</w:t></w:r></w:p>"
    )
    assert _docx_count(body) == 2


def test_docx_paragraphs_tabs_and_breaks_separate_words() -> None:
    body = (
        "<w:p><w:r><w:t>one</w:t></w:r></w:p><w:p><w:r><w:t>two</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>three</w:t><w:tab/><w:t>four</w:t><w:br/><w:t>five</w:t><w:cr/><w:t>six</w:t></w:r></w:p>"
    )
    assert _docx_count(body) == 6


def test_docx_tables_are_counted() -> None:
    cell = "<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>"
    body = (
        "<w:p><w:r><w:t>Intro text</w:t></w:r></w:p><w:tbl><w:tr>"
        + cell.format("a b")
        + cell.format("c")
        + "</w:tr></w:tbl>"
    )
    assert _docx_count(body) == 5


def test_docx_ignores_text_outside_text_runs() -> None:
    body = (
        "<w:p><w:pPr><w:pStyle w:val='Heading1'/></w:pPr>"
        "<w:r><w:instrText>PAGE</w:instrText><w:t>visible</w:t></w:r></w:p>"
    )
    assert _docx_count(body) == 1


def test_docx_made_by_python_docx() -> None:
    import docx

    document = docx.Document()
    document.add_heading("A title here", 1)
    paragraph = document.add_paragraph("Split")
    paragraph.add_run("ting runs joins them")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("r1c1", "r1 c2"), ("আমার সোনার", "x")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    assert count_words(buffer, "docx") == 3 + 4 + 1 + 2 + 2 + 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: io.BytesIO(b"plain text pretending to be docx"), "not a zip"),
        (lambda: io.BytesIO(b"PK\x03\x04broken"), "not a zip"),
        (lambda: _docx("", document="", extra={}), "not valid XML"),
        (lambda: _docx("<w:p><w:t>unclosed</w:p>"), "not valid XML"),
    ],
)
def test_not_a_word_document(make, reason: str) -> None:
    with pytest.raises(Unreadable, match=reason):
        count_words(make(), "docx")


def test_zip_without_document_xml() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(Unreadable, match=r"word/document\.xml"):
        count_words(buffer, "docx")


def test_xml_entity_bomb_is_refused() -> None:
    document = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        f"<w:document {W}><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"
    )
    with pytest.raises(Unreadable, match="DTD"):
        count_words(_docx("", document=document), "docx")


def test_zip_bomb_refused_before_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordcount, "MAX_DOCUMENT_XML_BYTES", 1_000_000)
    body = "<w:p><w:r><w:t>" + "a" * 2_000_000 + "</w:t></w:r></w:p>"
    with pytest.raises(Unreadable, match="too large"):
        count_words(_docx(body), "docx")


def test_zip_bomb_by_ratio_refused() -> None:
    body = "<w:p><w:r><w:t>" + " " * 5_000_000 + "</w:t></w:r></w:p>"
    with pytest.raises(Unreadable, match="zip bomb"):
        count_words(_docx(body), "docx")


def test_inflation_is_capped_even_when_the_directory_passes_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory's sizes can lie: counting the inflated bytes is the guard that cannot."""
    monkeypatch.setattr(wordcount, "MAX_DOCUMENT_XML_BYTES", 200_000)
    monkeypatch.setattr(wordcount, "_checked_document_entry", lambda archive: archive.getinfo("word/document.xml"))
    buffer = _docx("<w:p><w:r><w:t>" + "b " * 400_000 + "</w:t></w:r></w:p>")
    with pytest.raises(Unreadable, match="too large"):
        count_words(buffer, "docx")


def test_too_many_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordcount, "MAX_ZIP_ENTRIES", 5)
    extra = {f"word/media/{i}.bin": b"x" for i in range(10)}
    with pytest.raises(Unreadable, match="too many parts"):
        count_words(_docx("<w:p/>", extra=extra), "docx")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        count_words(io.BytesIO(b""), "pdf")  # type: ignore[arg-type]


def test_whitespace_tables_match_str_isspace() -> None:
    import sys

    non_ascii = "".join(chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).isspace())
    ascii_ = "".join(chr(c) for c in range(0x80) if chr(c).isspace())
    assert non_ascii == wordcount.UNICODE_WHITESPACE
    assert sorted(wordcount.ASCII_WHITESPACE) == sorted(ascii_)


@pytest.mark.parametrize("seed", range(20))
def test_random_text_counts_exactly_like_str_split(seed: int) -> None:
    import random

    rng = random.Random(seed)
    alphabet = ["a", "Z", "é", "ব", "া", "—", "😀", "\u200b", *wordcount.ASCII_WHITESPACE]
    alphabet += list(wordcount.UNICODE_WHITESPACE)
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
    for chunk_bytes in (1, 2, 3, 5, 17, 4096):
        assert _txt(text.encode(), chunk_bytes=chunk_bytes) == len(text.split()), (chunk_bytes, text)


# --- hostile documents: every resource bounded, every breakage a reason -------------------

MiB = 1 << 20


def _peak_of_counting(data: bytes) -> tuple[str, int]:
    """(the reason it was refused, peak bytes Python and expat allocated while counting)."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(Unreadable) as refused:
            count_words(io.BytesIO(data), "docx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return refused.value.reason, peak


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (lambda: documents.nested_tags(4 * MiB), "nested too deeply"),
        (lambda: documents.long_attribute(8 * MiB), "too long"),
        (lambda: documents.long_comment(8 * MiB), "too long"),
        (lambda: documents.nested_namespaces(200, 4000), "namespaces"),
        (lambda: [documents.body(f"<w:{'n' * 2000}/>")], "name too long"),
    ],
    ids=["nesting", "attribute", "comment", "namespaces", "name"],
)
def test_parser_bombs_are_refused_early_in_little_memory(xml, reason: str) -> None:
    """Each of these took the counter to hundreds of MiB at full size (issue 14)."""
    refused, peak = _peak_of_counting(docx_of_xml(xml(), compression=zipfile.ZIP_STORED))
    assert reason in refused
    assert peak < 4 * MiB, peak


def test_cpu_time_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordcount, "MAX_PARSE_SECONDS", 0.05)
    with pytest.raises(Unreadable, match="too long to read"):
        count_words(
            io.BytesIO(docx_of_xml(documents.dense_paragraphs(8 * MiB), compression=zipfile.ZIP_STORED)), "docx"
        )


def test_a_directory_of_many_entries_is_refused_before_zipfile_reads_it() -> None:
    refused, peak = _peak_of_counting(documents.many_entries(30_000))
    assert "too many parts" in refused
    assert peak < 2 * MiB, peak  # zipfile would have built 30,000 ZipInfo objects


def test_deep_but_real_nesting_and_long_text_runs_count() -> None:
    cell = "<w:tbl><w:tr><w:tc>{}</w:tc></w:tr></w:tbl>"
    nested = "<w:p><w:r><w:t>deep</w:t></w:r></w:p>"
    for _ in range(30):  # tables 30 deep: 90 levels
        nested = cell.format(nested)
    run = "<w:p><w:r><w:t>" + " ".join(map(str, range(300_000))) + "</w:t></w:r></w:p>"  # 2 MB in one run
    assert _docx_count(nested + run) == 1 + 300_000


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (documents.corrupt_deflate, "damaged"),
        (documents.bad_crc, "damaged"),
        (documents.encrypted, "encrypted"),
        (documents.truncated, "not a zip"),
        (lambda data: data[:-5], "not a zip"),
        (documents.unknown_compression, "compressed in a way"),
        (lambda data: documents.unknown_compression(data, 14), "compressed in a way"),  # LZMA
        (documents.zip64_locator, "zip64"),
    ],
    ids=["deflate", "crc", "encrypted", "truncated", "cut-end-record", "method-99", "lzma", "zip64"],
)
def test_broken_zips_are_unreadable_with_a_reason(break_it, reason: str) -> None:
    data = break_it(docx_of_xml(documents.body("<w:p><w:r><w:t>" + "some words " * 2000 + "</w:t></w:r></w:p>")))
    with pytest.raises(Unreadable, match=reason):
        count_words(io.BytesIO(data), "docx")


@pytest.mark.parametrize("seed", range(40))
def test_any_damage_to_a_real_document_is_a_count_or_unreadable(seed: int) -> None:
    """Random byte damage anywhere in a python-docx file: never any other exception."""
    import random

    rng = random.Random(seed)
    data = bytearray(documents.docx_bytes("Some words to count here", "and a second paragraph"))
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    try:
        words = count_words(io.BytesIO(bytes(data)), "docx")
    except Unreadable as refused:
        assert refused.reason
    else:
        assert words >= 0
