"""What the Lambda layer (`layer-deployment.zip`, Chalice's `automatic_layer`) must hold.

Chalice downloads a Lambda-compatible wheel for each requirement and, when there is none, only
prints "Could not install dependencies" and packages the rest: the function then fails on the
first request that imports the missing module. So the package step checks that the layer holds
every distribution `requirements.txt` pulls in (as this venv resolved them), and that each
shared library in it loads on the glibc of Lambda's python3.11 (Amazon Linux 2).
"""

from __future__ import annotations

import importlib.metadata
import re
import struct
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LAMBDA_GLIBC = (2, 26)  # python3.11's Amazon Linux 2
SHT_GNU_VERNEED, VER_FLG_WEAK = 0x6FFFFFFE, 0x2
GLIBC_VERSION = re.compile(rb"GLIBC_(\d+(?:\.\d+)*)")


def required(requirements: list[str]) -> set[str]:
    """The distributions `requirements` (pip lines) install, dependencies included, by canonical name."""
    found: set[str] = set()
    lines = [line.split("#", 1)[0].strip() for line in requirements]
    pending = [Requirement(line) for line in lines if line]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        pending.extend(Requirement(line) for line in importlib.metadata.requires(name) or [])
    return found


def held(archive: Path) -> set[str]:
    """The distributions in a zip, by their `.dist-info` directories (pip writes one for each)."""
    with zipfile.ZipFile(archive) as opened:
        folders = {Path(name).parts[-2] for name in opened.namelist() if "/" in name}
    return {canonicalize_name(folder.split("-")[0]) for folder in folders if folder.endswith(".dist-info")}


def glibc_needed(library: bytes) -> tuple[int, ...]:
    """The newest glibc an x86-64 ELF shared library cannot load without.

    Read from its version needs (`readelf -V`), not its wheel's tag: a reference marked weak is
    resolved where that glibc has it and left out where not, so it does not count. (cbor2's wheel
    is tagged manylinux_2_28 for its weak `statx`, Rust's fallback-guarded call; it needs 2.14.)
    """
    (table_offset,) = struct.unpack_from("<Q", library, 0x28)
    entry_size, count = struct.unpack_from("<HH", library, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", library, table_offset + i * entry_size) for i in range(count)]
    newest: tuple[int, ...] = (0,)
    for _, kind, _, _, offset, _, link, needs, _, _ in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strings, need = sections[link][4], offset
        for _ in range(needs):
            _, versions, _, version, following = struct.unpack_from("<HHIII", library, need)
            for _ in range(versions):
                _, flags, _, name, after = struct.unpack_from("<IHHII", library, need + version)
                matched = GLIBC_VERSION.fullmatch(library[strings + name : library.index(b"\0", strings + name)])
                if matched and not flags & VER_FLG_WEAK:
                    newest = max(newest, tuple(int(part) for part in matched[1].split(b".")))
                version += after
            need += following
    return newest


def check(layer: Path, requirements: list[str], vendored: set[str]) -> None:
    """Fail unless the layer holds every required distribution (and the `vendored` ones, installed
    without their dependencies) and each of its shared libraries loads on Lambda's glibc."""
    missing = (required(requirements) | vendored) - held(layer)
    with zipfile.ZipFile(layer) as opened:
        libraries = {name: glibc_needed(opened.read(name)) for name in opened.namelist() if name.endswith(".so")}
    too_new = {name: needed for name, needed in libraries.items() if needed > LAMBDA_GLIBC}
    if missing or too_new:
        raise SystemExit(f"{layer.name}: missing {sorted(missing)}; needing a glibc newer than Lambda's: {too_new}")
