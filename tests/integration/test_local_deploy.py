"""The packaged template deployed on moto's CloudFormation: references, order, wiring.

`build/package/sam.json` goes through AWS's own SAM translator (`aws-sam-translator`, what
CloudFormation's `AWS::Serverless` transform runs), the zip and the layer to an artifacts bucket, and the
result to moto's CloudFormation, which creates each resource in its own backends in dependency
order, resolving every `Ref`, `Fn::GetAtt` and `Fn::Sub`. Then the services are asked what
exists. What moto cannot create is listed below with the reason; docs/deploy.md says the rest.
(LocalStack was tried too: its CloudFormation fails the stack at the first function, since its
Lambda downloads a runtime at creation, impossible offline.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from samtranslator.translator.transform import transform

from chalicelib.core.models import ALL_MODELS
from tests.stack import PROJECT_DIR

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Tried to parse AWS::")]

ARCHIVE = PROJECT_DIR / "build" / "package" / "deployment.zip"
LAYER = PROJECT_DIR / "build" / "package" / "layer-deployment.zip"
STACK = "paidupload-prod"
PARAMETERS = {"MailSenderIdentity": "example.com"}
# Types left out of the stack moto gets, each with its reason.
LEFT_OUT = {
    "AWS::ApiGateway::Deployment": "moto's RestApi ignores the OpenAPI Body SAM writes (no methods), and moto "
    "refuses to deploy an API without methods",
    "AWS::ApiGateway::Stage": "needs that deployment",
    "AWS::WAFv2::WebACLAssociation": "needs that stage",
}
# Types moto's CloudFormation accepts as empty placeholders (it has no support for them).
PLACEHOLDERS = {"AWS::CloudWatch::Alarm", "AWS::WAFv2::WebACL", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"}
WAIT_SECONDS = 120


class _NoManagedPolicies:
    """The translator asks for AWS managed policies only for `Policies` by name: we use none."""

    def load(self) -> dict[str, str]:
        return {}


def translated(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation's SAM transform makes of the template, its code and layer in the artifacts
    bucket (as `aws cloudformation package` rewrites it)."""
    template = json.loads(json.dumps(template))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://artifacts/layer-deployment.zip"
    return transform(template, {**PARAMETERS, "AWS::Region": "us-east-1"}, _NoManagedPolicies())


@pytest.fixture(scope="module")
def deployed(package: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stack created on moto; yields the translated template and what was measured."""
    with mock_aws():
        started = time.monotonic()
        full = translated(package)
        template = {**full, "Resources": {k: r for k, r in full["Resources"].items() if r["Type"] not in LEFT_OUT}}
        template.pop("Outputs")  # they name the stage that is left out
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.upload_file(str(ARCHIVE), "artifacts", "deployment.zip")
        s3.upload_file(str(LAYER), "artifacts", "layer-deployment.zip")
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in PARAMETERS.items()],
        )
        deadline = time.monotonic() + WAIT_SECONDS
        while (stack := cloudformation.describe_stacks(StackName=STACK)["Stacks"][0])["StackStatus"].endswith(
            "IN_PROGRESS"
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        summaries = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        yield {
            "full": full,
            "template": template,
            "stack": stack,
            # moto lists a resource it cannot create with neither logical id nor type
            "resources": {s["LogicalResourceId"]: s for s in summaries if s["LogicalResourceId"]},
            "placeholders": len([s for s in summaries if not s["LogicalResourceId"]]),
            "seconds": time.monotonic() - started,
        }


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_the_stack_is_created_with_every_resource_moto_supports(deployed: dict[str, Any]) -> None:
    assert deployed["stack"]["StackStatus"] == "CREATE_COMPLETE", deployed["stack"]
    template, resources = deployed["template"], deployed["resources"]
    conditional = {name for name, r in template["Resources"].items() if r.get("Condition") == "HasAlarmEmail"}
    missing = set(template["Resources"]) - conditional - set(resources)  # AlarmEmail is empty by default
    assert {template["Resources"][name]["Type"] for name in missing} == PLACEHOLDERS
    assert deployed["placeholders"] == len(missing) + len(conditional)  # a false condition too
    assert len(resources) == len(template["Resources"]) - len(conditional) - len(missing)
    left_out = {r["Type"] for r in deployed["full"]["Resources"].values()} & set(LEFT_OUT)
    assert left_out == set(LEFT_OUT)
    assert deployed["seconds"] < 60


def test_tables_queues_and_bucket_exist_with_their_references_resolved(deployed: dict[str, Any]) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    tables = _of_type(deployed["template"], "AWS::DynamoDB::Table")
    assert len(tables) == len(ALL_MODELS)
    for resource in tables.values():
        declared = resource["Properties"]
        table = dynamodb.describe_table(TableName=declared["TableName"])["Table"]
        assert table["KeySchema"] == declared["KeySchema"]
        indexes = {i["IndexName"] for i in declared.get("GlobalSecondaryIndexes", [])}
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == indexes
    sqs = boto3.client("sqs", region_name="us-east-1")
    for name, dead_letter in (("upload-events", "upload-events-dlq"), ("mail", "mail-dlq")):
        url = sqs.get_queue_url(QueueName=f"paidupload-prod-{name}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == f"arn:aws:sqs:us-east-1:123456789012:paidupload-prod-{dead_letter}"
        assert attributes["VisibilityTimeout"] == "360"
    s3 = boto3.client("s3", region_name="us-east-1")  # moto applies its encryption, not its other settings
    encryption = s3.get_bucket_encryption(Bucket="paidupload-prod-uploads")["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_functions_run_the_zip_and_the_layer_with_their_own_roles(deployed: dict[str, Any]) -> None:
    lambda_ = boto3.client("lambda", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    declared = _of_type(deployed["template"], "AWS::Lambda::Function")
    assert len(declared) == 7
    [layer_id] = _of_type(deployed["template"], "AWS::Lambda::LayerVersion")  # the requirements
    [layer] = lambda_.list_layers()["Layers"]  # named by moto after the stack and the logical id
    version = lambda_.get_layer_version(LayerName=layer["LayerName"], VersionNumber=1)
    assert (version["Content"]["CodeSize"], version["CompatibleRuntimes"]) == (LAYER.stat().st_size, ["python3.11"])
    for name, resource in declared.items():
        physical = deployed["resources"][name]["PhysicalResourceId"]
        function = lambda_.get_function(FunctionName=physical)["Configuration"]
        properties = resource["Properties"]
        assert (function["Runtime"], function["Handler"]) == ("python3.11", properties["Handler"])
        assert (function["MemorySize"], function["Timeout"]) == (properties["MemorySize"], properties["Timeout"])
        assert function["CodeSize"] == ARCHIVE.stat().st_size
        assert properties["Layers"] == [{"Ref": layer_id}]  # moto drops a function's Layers: checked declared
        assert function["Environment"]["Variables"]["STAGE"] == "prod"
        role_name = function["Role"].rsplit("/", 1)[-1]
        [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        document = json.dumps(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"])
        assert "${" not in document and ":123456789012:" in document  # every Fn::Sub resolved


def test_queues_and_schedules_reach_the_right_functions(deployed: dict[str, Any]) -> None:
    lambda_ = boto3.client("lambda", region_name="us-east-1")
    physical = {name: r["PhysicalResourceId"] for name, r in deployed["resources"].items()}
    every = lambda_.list_event_source_mappings()["EventSourceMappings"]
    mappings = [m for m in every if m["EventSourceArn"].startswith("arn:aws:sqs:")]
    wired = {m["EventSourceArn"].rsplit(":", 1)[-1]: m["FunctionArn"].rsplit(":", 1)[-1] for m in mappings}
    assert wired == {
        "paidupload-prod-upload-events": physical["ProcessUploadEvents"],
        "paidupload-prod-upload-events-dlq": physical["ProcessDeadUploadEvents"],
        "paidupload-prod-mail": physical["SendMail"],
    }
    batching = {(m["BatchSize"], m["MaximumBatchingWindowInSeconds"], *m["FunctionResponseTypes"]) for m in mappings}
    assert batching == {(10, 1, "ReportBatchItemFailures")}
    assert {m["ScalingConfig"]["MaximumConcurrency"] for m in mappings} == {5}
    # The outbox's stream, created with its table, feeds the relay from its start.
    [stream] = [m for m in every if m not in mappings]
    outbox = boto3.client("dynamodb", region_name="us-east-1").describe_table(TableName="paidupload-prod-outbox")
    assert stream["EventSourceArn"] == outbox["Table"]["LatestStreamArn"]
    assert outbox["Table"]["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert stream["FunctionArn"].rsplit(":", 1)[-1] == physical["RelayMail"]
    assert (stream["StartingPosition"], stream["BatchSize"]) == ("TRIM_HORIZON", 10)
    events = boto3.client("events", region_name="us-east-1")
    schedules = {}
    for rule in events.list_rules()["Rules"]:
        [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        schedules[target["Arn"].rsplit(":", 1)[-1]] = rule["ScheduleExpression"]
    assert schedules == {physical["ReconcilePayments"]: "rate(5 minutes)", physical["ExpireUploads"]: "rate(1 hour)"}
