"""`make package` + cfn-lint: the prod stage packages into one valid stack with a small zip."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.core.models import ALL_MODELS
from infra import observability
from infra.layer import held, required
from tests.stack import PROJECT_DIR

pytestmark = pytest.mark.integration
ZIP_SIZE = r"(?<!layer-)deployment\.zip \((\d+\.\d+) MB\)|in a (\d+\.\d+) MB zip"  # how the docs quote it
LAYER_SIZE = r"layer-deployment\.zip \((\d+\.\d+) MB\)"
PACKAGE = PROJECT_DIR / "build" / "package"


def test_template_passes_cfn_lint(package: dict) -> None:
    result = subprocess.run(
        [str(PROJECT_DIR / ".venv" / "bin" / "cfn-lint"), "build/package/sam.json"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


SCANNERS_PYTHON = PROJECT_DIR / ".tools" / "scanners" / "bin" / "python"


def _scan(template: Path) -> subprocess.CompletedProcess[str]:
    command = [str(SCANNERS_PYTHON), "-m", "infra.scan", str(template)]
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)


def test_checkov_and_parliament_find_nothing_the_baseline_does_not_explain(package: dict) -> None:
    result = _scan(PROJECT_DIR / "build" / "package" / "sam.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 unexplained" in result.stdout


def test_the_scan_fails_on_a_public_bucket_and_a_wildcard_policy(package: dict, tmp_path: Path) -> None:
    """The gate bites: a bucket with its public-access block gone, a role allowed s3:* on *."""
    broken = json.loads(json.dumps(package))
    bucket = next(r for r in broken["Resources"].values() if r["Type"] == "AWS::S3::Bucket")
    del bucket["Properties"]["PublicAccessBlockConfiguration"]
    role = broken["Resources"][next(n for n, r in broken["Resources"].items() if r["Type"] == "AWS::IAM::Role")]
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    )
    (tmp_path / "sam.json").write_text(json.dumps(broken))
    result = _scan(tmp_path / "sam.json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNEXPLAINED checkov CKV_AWS_53" in result.stdout  # BlockPublicAcls
    assert "UNEXPLAINED parliament RESOURCE_STAR" in result.stdout


def test_zip_is_small_and_carries_no_botocore(package: dict) -> None:
    archive = PACKAGE / "deployment.zip"
    # 1.3 MB before passkeys, 9.3 MB with py_webauthn's dependencies in it; since they are in the layer,
    # our code and Chalice's runtime only: 0.60 MB (docs/deploy.md).
    assert archive.stat().st_size < 5_000_000
    names = zipfile.ZipFile(archive).namelist()
    assert "app.py" in names and "chalice/app.py" in names
    assert any(name.startswith("chalicelib/dashboard/static/") for name in names)
    assert not any(name.startswith(("botocore/", "boto3/", "moto/", "local/", "tests/")) for name in names)


def test_the_layer_holds_every_requirement_and_the_zip_none(package: dict) -> None:
    """The stage's `automatic_layer`: every function runs with the layer the template declares."""
    layer = PACKAGE / "layer-deployment.zip"
    # 9.31 MB measured (2026-12-08: cryptography 4.9 MB, bytecode 2.1 MB); Lambda takes 50 MB zipped.
    assert layer.stat().st_size < 10_500_000
    assert package["Resources"]["ManagedLayer"]["Properties"]["ContentUri"] == "./layer-deployment.zip"
    functions = [r for r in package["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert all(f["Properties"]["Layers"] == [{"Ref": "ManagedLayer"}] for f in functions)
    requirements = (PROJECT_DIR / "requirements.txt").read_text().splitlines()
    shipped = required([line for line in requirements if not line.startswith("pynamodb==")]) | {"pynamodb"}
    assert {"webauthn", "cryptography", "cbor2", "pynamodb", "bcrypt"} <= shipped <= held(layer)
    names = zipfile.ZipFile(layer).namelist()
    assert all(name.startswith("python/lib/python3.11/site-packages/") for name in names)  # Lambda's /opt path
    assert held(PACKAGE / "deployment.zip") == set()
    tops = {name.split("/")[0] for name in zipfile.ZipFile(PACKAGE / "deployment.zip").namelist()}
    assert tops == {"app.py", "chalice", "chalicelib", "__pycache__"}


@pytest.mark.parametrize("archive", ["deployment.zip", "layer-deployment.zip"])
def test_every_module_ships_bytecode_lambda_reads_without_compiling(package: dict, archive: str) -> None:
    """A read-only /var/task or /opt cannot cache bytecode: without it each cold start compiles anew."""
    opened = zipfile.ZipFile(PACKAGE / archive)
    names = set(opened.namelist())
    sources = sorted(name for name in names if name.endswith(".py"))
    site = "python/lib/python3.11/site-packages/"
    expected = {
        "deployment.zip": {"app.py", "chalice/app.py", "chalicelib/files/worker.py"},
        "layer-deployment.zip": {f"{site}pynamodb/models.py", f"{site}webauthn/__init__.py", f"{site}jwt/api_jwt.py"},
    }
    assert expected[archive] <= set(sources)
    for source in sources:
        bytecode = opened.read(importlib.util.cache_from_source(source))
        assert bytecode[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(bytecode[4:8], "little") == 0b01, source  # hash-based, source never checked
    assert len([name for name in names if name.endswith(".pyc")]) == len(sources)  # no stale pip leftovers
    functions = [r for r in package["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert {function["Properties"]["Runtime"] for function in functions} == {ours}
    assert package["Resources"]["ManagedLayer"]["Properties"]["CompatibleRuntimes"] == [ours]


def test_one_stack_holds_everything(package: dict) -> None:
    types = [resource["Type"] for resource in package["Resources"].values()]
    assert types.count("AWS::DynamoDB::Table") == len(ALL_MODELS)
    assert types.count("AWS::SQS::Queue") == 4  # uploads and mail, each with its dead-letter queue
    assert "AWS::S3::Bucket" in types and "AWS::SQS::QueuePolicy" in types and "AWS::CloudWatch::Alarm" in types
    # The merge landed on Chalice's own API (same logical id), not beside it.
    assert package["Resources"]["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert "MISSING_AUTHENTICATION_TOKEN" in package["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    text = json.dumps(package)
    for secret_word in ("dbb74894e82415a2f7ff0ec3a97e4183", "JWT_SIGNING_KEY", "AAMARPAY_SIGNATURE_KEY"):
        assert secret_word not in text


def test_stack_has_alarms_topic_dashboard_and_tracing(package: dict) -> None:
    resources = package["Resources"]
    types = [resource["Type"] for resource in resources.values()]
    assert types.count("AWS::CloudWatch::Alarm") >= 10
    assert "AWS::SNS::Topic" in types and "AWS::CloudWatch::Dashboard" in types
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == set(observability.FUNCTIONS.values())  # every function, each traced
    for function in functions.values():
        assert function["Properties"]["Tracing"] == "Active"
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert "xray:PutTraceSegments" in json.dumps(role["Properties"]["Policies"])  # what tracing needs


def test_the_docs_state_the_zip_sizes_make_package_measures(package: dict) -> None:
    """docs/deploy.md and docs/observability.md quote the zip's size, docs/deploy.md the layer's: within 5%."""
    for archive, pattern, pages in (
        ("deployment.zip", ZIP_SIZE, ("docs/deploy.md", "docs/observability.md")),
        ("layer-deployment.zip", LAYER_SIZE, ("docs/deploy.md",)),
    ):
        measured = (PACKAGE / archive).stat().st_size / 1_000_000
        quoted = {
            page: [
                float(next(filter(None, found.groups())))
                for found in re.finditer(pattern, (PROJECT_DIR / page).read_text())
            ]
            for page in pages
        }
        assert all(quoted.values()), quoted
        for page, sizes in quoted.items():
            assert all(abs(size - measured) <= 0.05 * measured for size in sizes), (page, sizes, f"{measured:.2f} MB")
