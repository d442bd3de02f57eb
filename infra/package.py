"""`make package`: the prod stage as one CloudFormation (SAM) stack in `build/package/`.

Steps: read the stage's environment from `.chalice/config.json` (before anything imports
the models, whose table names depend on it); stage a copy of the app in `build/src` with the
rendered least-privilege policies; vendor pynamodb without its dependencies (Lambda's runtime
already has botocore, which would otherwise add ~17 MB); render the merge template; run
`chalice package`. The stage's `automatic_layer` splits its output: `deployment.zip` holds our
code and Chalice's runtime, `layer-deployment.zip` (the `ManagedLayer` every function uses)
the requirements and `vendor/`. Then check the layer lacks nothing (`infra/layer.py`) and put
bytecode beside every module in both zips.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra import layer

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUILD = PROJECT_DIR / "build"
NOT_SHIPPED = ("pynamodb", "chalice")  # vendored without dependencies (into the layer) / provided by chalice itself
# Chalice takes a wheel by its tag only, and cbor2 (webauthn's, >=6.1.2) has no release tagged for
# Lambda's python3.11 glibc (2.26): its manylinux_2_28 wheel is vendored, since it loads there
# (infra/layer.py reads what its library needs; the build checks every library in the layer).
FOR_NEWER_GLIBC = ("cbor2",)


def stage_environment(stage: str) -> dict[str, str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def _pinned(requirement: str, name: str) -> bool:
    return requirement.split("==", maxsplit=1)[0].strip().lower() == name


def stage_sources(source: Path, policies: dict[str, dict]) -> None:
    from infra.policies import policy_file_name

    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "app.py", source)
    shutil.copytree(PROJECT_DIR / "chalicelib", source / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", source / ".chalice", ignore=shutil.ignore_patterns("deployments", "venv"))
    for function, document in policies.items():
        (source / ".chalice" / policy_file_name(function)).write_text(json.dumps(document, indent=2))
    lines = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if not any(_pinned(line, name) for name in NOT_SHIPPED)]
    (source / "requirements.txt").write_text("\n".join(kept) + "\n")
    pynamodb = next(line for line in lines if _pinned(line, "pynamodb"))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(source / "vendor")]
    subprocess.run([*pip, pynamodb], check=True)
    wheels = [f"{name}=={importlib.metadata.version(name)}" for name in FOR_NEWER_GLIBC]
    lambda_wheel = ["--only-binary=:all:", "--platform=manylinux_2_28_x86_64", "--implementation=cp"]
    version = f"--python-version={sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([*pip, *lambda_wheel, version, *wheels], check=True)


def runtime_matches(template: dict) -> bool:
    """Bytecode is only read by the Python that wrote it: the functions' runtime must be ours."""
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    return bool(functions) and all(f["Properties"]["Runtime"] == ours for f in functions)


def add_bytecode(archive: Path) -> int:
    """Rewrite `archive` with an unchecked-hash `.pyc` beside each `.py`; returns how many.

    Lambda's code and layer directories (/var/task, /opt) are read-only, so a module without
    bytecode is compiled again on every cold start (chalice ships `app.py`, `chalicelib` and
    its own `chalice/app.py` as source, and its layer without bytecode). Unchecked: the code
    never changes under a deployed function, so the import skips even the source's timestamp
    check. Earlier `.pyc` files are dropped, since pip's timestamp-checked ones go stale when
    zip stores times in 2-second steps.
    """
    compiled = 0
    rebuilt = archive.with_suffix(".rebuilt")
    with (
        tempfile.TemporaryDirectory() as scratch,
        zipfile.ZipFile(archive) as original,
        zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as output,
    ):
        for member in original.infolist():
            if member.filename.endswith(".pyc"):
                continue
            data = original.read(member)
            output.writestr(member, data)
            if not member.filename.endswith(".py"):
                continue
            source = Path(scratch, member.filename)
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(data)
            bytecode = source.with_suffix(".pyc")
            py_compile.compile(
                str(source),
                cfile=str(bytecode),
                dfile=member.filename,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            output.write(bytecode, importlib.util.cache_from_source(member.filename))
            compiled += 1
    rebuilt.replace(archive)
    return compiled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args(argv)
    os.environ.update(stage_environment(args.stage))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice package needs one; no credentials

    from chalicelib.core.config import settings
    from infra.policies import function_access, policy
    from infra.template import merge_template

    config = settings()
    policies = {name: policy(access, config) for name, access in function_access(config).items()}
    source, output = BUILD / "src", BUILD / "package"
    stage_sources(source, policies)
    merge_path = BUILD / "merge-template.json"
    merge_path.write_text(json.dumps(merge_template(config), indent=2))
    if output.exists():
        shutil.rmtree(output)
    subprocess.run(
        [
            str(Path(sys.executable).with_name("chalice")),
            "package",
            "--stage",
            args.stage,
            "--merge-template",
            str(merge_path),
            str(output),
        ],
        cwd=source,
        check=True,
    )
    if not runtime_matches(json.loads((output / "sam.json").read_text())):
        raise SystemExit(f"the functions' runtime is not this Python {sys.version_info[:2]}: no bytecode added")
    required = (source / "requirements.txt").read_text().splitlines()
    layer.check(output / "layer-deployment.zip", required, {"pynamodb", *FOR_NEWER_GLIBC})
    for archive in (output / "deployment.zip", output / "layer-deployment.zip"):
        compiled = add_bytecode(archive)
        with zipfile.ZipFile(archive) as opened:
            files = len(opened.infolist())
        size = archive.stat().st_size / 1_000_000
        print(f"{archive.relative_to(PROJECT_DIR)}: {size:.2f} MB, {files} files ({compiled} compiled modules)")
    print(f"template: {(output / 'sam.json').relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
