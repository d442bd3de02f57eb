"""`make package`: the prod stage as one CloudFormation (SAM) stack in `build/package/`.

Steps: read the stage's environment from `.chalice/config.json` (before anything imports
the models, whose table names depend on it); stage a copy of the app in `build/src` with the
rendered least-privilege policies; vendor pynamodb without its dependencies (Lambda's runtime
already has botocore, which would otherwise add ~17 MB to the zip); render the merge
template; run `chalice package`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUILD = PROJECT_DIR / "build"
NOT_SHIPPED = ("pynamodb", "chalice")  # vendored without dependencies / provided by chalice itself


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
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(source / "vendor"), pynamodb],
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args(argv)
    os.environ.update(stage_environment(args.stage))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice package needs one; no credentials

    from chalicelib.config import settings
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
    archive = output / "deployment.zip"
    with zipfile.ZipFile(archive) as opened:
        files = len(opened.infolist())
    print(f"{archive.relative_to(PROJECT_DIR)}: {archive.stat().st_size / 1_000_000:.2f} MB, {files} files")
    print(f"template: {(output / 'sam.json').relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
