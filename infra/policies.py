"""Least-privilege IAM policies, one per Lambda function, derived from what each one touches.

`chalice package` embeds these documents in the template as they are, so resource ARNs use
`Fn::Sub` for the account and region. `infra/package.py` writes them to `.chalice/` before
packaging; a test checks every table and queue each function's code path needs is covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import SECRET_PARAMETERS, Settings
from chalicelib.models import ALL_MODELS, Activity, Counter, File, Payment, User
from infra.resources import UPLOAD_PREFIX

DYNAMODB_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
DYNAMODB_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


@dataclass(frozen=True)
class FunctionAccess:
    """What one Lambda function may reach."""

    tables: tuple[type, ...]
    s3_actions: tuple[str, ...] = ()
    bucket_actions: tuple[str, ...] = ()  # on the bucket itself (listing)
    queue_actions: dict[str, tuple[str, ...]] | None = None  # queue name -> actions
    reads_secrets: bool = False


def function_access(config: Settings) -> dict[str, FunctionAccess]:
    """Chalice function name -> its access (names as `chalice package` gives them)."""
    queue, dead_letters = config.upload_queue, config.upload_dead_letter_queue
    consume = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
    return {
        # Every route: all tables; presigns POST/GET for uploads; re-queues for reprocess.
        "api_handler": FunctionAccess(
            tables=ALL_MODELS,
            s3_actions=("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"),
            bucket_actions=("s3:ListBucketVersions",),
            queue_actions={queue: ("sqs:SendMessage", "sqs:GetQueueUrl")},
            reads_secrets=True,
        ),
        "process_upload_events": FunctionAccess(
            tables=(File, Activity, Counter),
            s3_actions=("s3:GetObject", "s3:DeleteObjectVersion"),
            bucket_actions=("s3:ListBucketVersions",),
            queue_actions={queue: consume},
        ),
        "process_dead_upload_events": FunctionAccess(
            tables=(File, Activity, Counter), queue_actions={dead_letters: consume}
        ),
        "reconcile_payments": FunctionAccess(tables=(Payment, User, Activity, Counter), reads_secrets=True),
    }


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def policy(access: FunctionAccess, config: Settings) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": LOGS, "Resource": _sub("arn:${AWS::Partition}:logs:*:*:*")},
    ]
    tables = [
        arn
        for model in access.tables
        for arn in (
            _sub(
                f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{model.Meta.table_name}"
            ),
            _sub(
                f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{model.Meta.table_name}/index/*"
            ),
        )
    ]
    statements.append(
        {"Effect": "Allow", "Action": DYNAMODB_READ + DYNAMODB_WRITE, "Resource": tables},
    )
    if access.s3_actions:
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(access.s3_actions),
                "Resource": _sub(f"arn:${{AWS::Partition}}:s3:::{config.upload_bucket}/{UPLOAD_PREFIX}*"),
            }
        )
    if access.bucket_actions:
        bucket = _sub(f"arn:${{AWS::Partition}}:s3:::{config.upload_bucket}")
        statements.append({"Effect": "Allow", "Action": list(access.bucket_actions), "Resource": bucket})
    for queue, actions in (access.queue_actions or {}).items():
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": _sub(f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue}"),
            }
        )
    prefix = config.secrets_ssm_prefix.rstrip("/")
    if access.reads_secrets and prefix:  # without a prefix the secrets come from the environment
        parameters = [
            _sub(f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{prefix}/{name}")
            for name in SECRET_PARAMETERS.values()
        ]
        statements += [
            {"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": parameters},
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": _sub("ssm.${AWS::Region}.amazonaws.com")}},
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file_name(function: str) -> str:
    return f"policy-{function.replace('_', '-')}.json"
