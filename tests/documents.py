"""Test documents built on the fly (shared by unit, integration and browser tests)."""

from __future__ import annotations

import io


def docx_bytes(*paragraphs: str) -> bytes:
    """A real Word document (python-docx) with one paragraph per argument."""
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
