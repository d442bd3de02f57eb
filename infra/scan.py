"""`make scan`: checkov on the packaged template, parliament on every function's IAM policy.

Runs in the scanners' own venv (`.tools/scanners`, `python -m local.install scanners`): checkov
pins a boto3 the project's venv cannot take. Every finding must be fixed in the template or
listed, with a one-line reason, in `infra/scan-baseline.json`; a baseline entry that no longer
matches a finding fails too, so the baseline cannot rot into a list of things long fixed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTALL_DIR = PROJECT_DIR / ".tools" / "scanners"
REQUIREMENTS = Path(__file__).with_name("scan-requirements.txt")
BASELINE = Path(__file__).with_name("scan-baseline.json")
TEMPLATE = PROJECT_DIR / "build" / "package" / "sam.json"
# What the pseudo parameters and the stack parameter become in the documents parliament reads.
SUBSTITUTES = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "MailSenderIdentity": "example.com",
}


class Finding(NamedTuple):
    """One scanner's complaint about one resource (a role's policy for parliament)."""

    scanner: str
    check: str
    resource: str
    detail: str


def checkov_findings(template: Path) -> list[Finding]:
    command = [str(Path(sys.executable).with_name("checkov")), "--file", str(template)]
    command += ["--framework", "cloudformation", "--output", "json", "--quiet", "--skip-download"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):  # 1: failed checks; anything else: checkov itself failed
        raise SystemExit(f"checkov exited {result.returncode}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if report["summary"]["parsing_errors"]:
        raise SystemExit("checkov could not parse the template")
    return [
        Finding("checkov", check["check_id"], check["resource"].rsplit(".", 1)[-1], check["check_name"])
        for check in report["results"]["failed_checks"]
    ]


def resolved(value: Any) -> Any:
    """The document with each `Fn::Sub` of a pseudo or stack parameter written out."""
    if isinstance(value, list):
        return [resolved(item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda match: SUBSTITUTES[match.group(1)], value["Fn::Sub"])
    return {key: resolved(item) for key, item in value.items()}


def role_policies(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                yield name, resolved(policy["PolicyDocument"])


def parliament_findings(template: dict[str, Any]) -> list[Finding]:
    from parliament import analyze_policy_string

    found = []
    for role, document in role_policies(template):
        for finding in analyze_policy_string(json.dumps(document), include_community_auditors=True).findings:
            found.append(Finding("parliament", finding.issue, role, json.dumps(finding.detail, default=str)[:200]))
    return found


def unexplained(findings: list[Finding], baseline: dict[str, dict[str, Any]]) -> tuple[list[Finding], list[str]]:
    """Findings the baseline does not explain, and baseline entries no finding matches.

    A baseline entry is `{"<scanner>:<check>": {"reason": "...", "resources": [...] or "*"}}`.
    """
    used: set[str] = set()
    left = []
    for finding in findings:
        key = f"{finding.scanner}:{finding.check}"
        entry = baseline.get(key)
        if entry and (entry["resources"] == "*" or finding.resource in entry["resources"]):
            used.add(key)
        else:
            left.append(finding)
    return left, sorted(set(baseline) - used)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("template", nargs="?", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    template = json.loads(args.template.read_text())
    findings = checkov_findings(args.template) + parliament_findings(template)
    baseline = {key: value for key, value in json.loads(BASELINE.read_text()).items() if not key.startswith("_")}
    left, stale = unexplained(findings, baseline)
    for finding in left:
        print(f"UNEXPLAINED {finding.scanner} {finding.check} on {finding.resource}: {finding.detail}")
    for key in stale:
        print(f"STALE baseline entry {key}: no finding left; remove it")
    explained = len(findings) - len(left)
    print(f"scan: {len(findings)} findings, {explained} explained by {BASELINE.name}, {len(left)} unexplained")
    return 1 if left or stale else 0


if __name__ == "__main__":
    sys.exit(main())
