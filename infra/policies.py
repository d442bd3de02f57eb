"""Least-privilege IAM policies, one per Lambda function, derived from what each one touches.

`chalice package` embeds these documents in the template as they are, so resource ARNs use
`Fn::Sub` for the account and region. `infra/package.py` writes them to `.chalice/` before
packaging; a test checks every table and queue each function's code path needs is covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from chalicelib.core.config import SECRET_PARAMETERS, Settings
from chalicelib.core.models import (
    ALL_MODELS,
    Activity,
    Claim,
    Counter,
    DailyCounter,
    File,
    MailLog,
    Outbox,
    Passkey,
    Payment,
    RateLimit,
    User,
)
from infra.observability import TRACING_STATEMENT
from infra.resources import UPLOAD_PREFIX

DYNAMODB_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
DYNAMODB_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
DYNAMODB_APPEND = ["dynamodb:PutItem"]
# The audit log and the outbox: no function may change or remove an entry or a job (a change to
# an outbox item would reach its stream as MODIFY, which nothing relays).
APPEND_ONLY: tuple[type, ...] = (Activity, Outbox)
# What Lambda's event source mapping needs to read a stream with the function's role; ListStreams
# names no stream (IAM evaluates it against `*`), and tells nothing but the account's stream ARNs.
STREAM_READ = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
STREAM_LIST = ["dynamodb:ListStreams"]
SENDER_PARAMETER = "MailSenderIdentity"  # the template's parameter: the SES identity (domain or address)
LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# Object reads that may meet a missing key: S3 answers 404 only to a caller that may also
# list the bucket, else 403 (indistinguishable from a real denial, so a 500 and retries).
READS_THAT_MAY_MISS = ("s3:GetObject", "s3:GetObjectVersion")


@dataclass(frozen=True)
class FunctionAccess:
    """What one Lambda function may reach."""

    tables: tuple[type, ...]
    deletes_from: tuple[type, ...] = ()  # tables whose items the code deletes (DeleteItem)
    s3_actions: tuple[str, ...] = ()
    bucket_actions: tuple[str, ...] = ()  # on the bucket itself (listing)
    queue_actions: dict[str, tuple[str, ...]] | None = None  # queue name -> actions
    reads_secrets: bool = False
    sends_email: bool = False  # ses:SendEmail, on the sender identity only
    reads_streams_of: tuple[type[Model], ...] = ()  # tables whose stream feeds the function (its event source mapping)


def function_access(config: Settings) -> dict[str, FunctionAccess]:
    """Chalice function name -> its access (names as `chalice package` gives them)."""
    queue, dead_letters = config.upload_queue, config.upload_dead_letter_queue
    consume = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
    return {
        # Every route: all tables; presigns POST/GET for uploads; re-queues for reprocess.
        "api_handler": FunctionAccess(
            tables=ALL_MODELS,
            # A successful login clears its failure counter; an account's deletion removes the
            # user and its username and email claims; a passkey's removal, the passkey and its claim.
            deletes_from=(RateLimit, User, Claim, Passkey),
            s3_actions=("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"),
            bucket_actions=("s3:ListBucketVersions",),
            queue_actions={queue: ("sqs:SendMessage", "sqs:GetQueueUrl")},
            reads_secrets=True,
        ),
        # The outbox's relay: new jobs from the table's stream onto the mail queue.
        "relay_mail": FunctionAccess(
            tables=(),
            reads_streams_of=(Outbox,),
            queue_actions={config.mail_queue: ("sqs:SendMessage", "sqs:GetQueueUrl")},
        ),
        # The mail worker: reads the account or payment it writes about, stores a reset
        # token's hash, counts reset emails and keeps each email's delivery state.
        "send_mail": FunctionAccess(
            tables=(User, Payment, RateLimit, MailLog),
            deletes_from=(MailLog,),  # a failed send releases its claim
            queue_actions={config.mail_queue: consume},
            sends_email=True,
        ),
        # The upload worker also corrects its owner's byte usage to the stored size (`quota.resize`).
        "process_upload_events": FunctionAccess(
            tables=(File, User, Activity, Counter, DailyCounter),
            s3_actions=("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"),
            bucket_actions=("s3:ListBucketVersions",),
            queue_actions={queue: consume},
        ),
        "process_dead_upload_events": FunctionAccess(
            tables=(File, Activity, Counter, DailyCounter),
            s3_actions=("s3:DeleteObjectVersion",),  # a stray version whose own event kept failing
            bucket_actions=("s3:ListBucketVersions",),
            queue_actions={dead_letters: consume},
        ),
        "reconcile_payments": FunctionAccess(
            tables=(Payment, User, Activity, Counter, DailyCounter, Outbox), reads_secrets=True
        ),
        # Stale uploads: asks S3 whether the bytes came (HEAD), then moves the file with its
        # entry, counters and the owner's quota.
        "expire_uploads": FunctionAccess(
            tables=(File, User, Activity, Counter, DailyCounter), s3_actions=("s3:GetObject",)
        ),
    }


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _table_arns(models: tuple[type[Model], ...]) -> list[dict[str, str]]:
    """Each table's ARN and its indexes' (queries on a GSI are authorized on the index)."""
    prefix = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
    return [_sub(f"{prefix}{model.Meta.table_name}{suffix}") for model in models for suffix in ("", "/index/*")]


def _dynamodb_statements(access: FunctionAccess) -> list[dict[str, Any]]:
    """Reads and writes per table; deletes only where the code deletes; the audit log
    append-only (PutItem, never UpdateItem or DeleteItem)."""
    changeable = tuple(model for model in access.tables if model not in APPEND_ONLY)
    appended = tuple(model for model in access.tables if model in APPEND_ONLY)
    grants = [
        (DYNAMODB_READ + DYNAMODB_WRITE, changeable),
        (DYNAMODB_READ + DYNAMODB_APPEND, appended),
        (["dynamodb:DeleteItem"], access.deletes_from),
    ]
    statements = [
        {"Effect": "Allow", "Action": actions, "Resource": _table_arns(models)} for actions, models in grants if models
    ]
    if access.reads_streams_of:
        prefix = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
        streams = [_sub(f"{prefix}{model.Meta.table_name}/stream/*") for model in access.reads_streams_of]
        statements.append({"Effect": "Allow", "Action": STREAM_READ, "Resource": streams})
        statements.append({"Effect": "Allow", "Action": STREAM_LIST, "Resource": "*"})
    return statements


def _s3_statements(access: FunctionAccess, config: Settings) -> list[dict[str, Any]]:
    """Object actions on the upload prefix, plus `ListBucket` for a function that reads
    objects which may be missing (see `READS_THAT_MAY_MISS`)."""
    if not access.s3_actions:
        return []
    bucket = f"arn:${{AWS::Partition}}:s3:::{config.upload_bucket}"
    statements = [
        {"Effect": "Allow", "Action": list(access.s3_actions), "Resource": _sub(f"{bucket}/{UPLOAD_PREFIX}*")}
    ]
    bucket_actions = list(access.bucket_actions)
    if any(action in READS_THAT_MAY_MISS for action in access.s3_actions):
        # On the bucket, without an `s3:prefix` condition: AWS documents no prefix for the
        # ListBucket check S3 makes behind a HeadObject/GetObject, so such a condition might
        # keep the 403. The bucket holds only upload objects, whose keys (user and file ids)
        # these functions already read from their tables: listing reveals nothing new.
        bucket_actions.insert(0, "s3:ListBucket")
    if bucket_actions:
        statements.append({"Effect": "Allow", "Action": bucket_actions, "Resource": _sub(bucket)})
    return statements


def policy(access: FunctionAccess, config: Settings) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": LOGS, "Resource": _sub("arn:${AWS::Partition}:logs:*:*:*")},
        TRACING_STATEMENT,  # every function is traced (infra/observability.py)
    ]
    statements += _dynamodb_statements(access)
    statements += _s3_statements(access, config)
    for queue, actions in (access.queue_actions or {}).items():
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": _sub(f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{queue}"),
            }
        )
    if access.sends_email:
        ses_identities = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["ses:SendEmail"],
                "Resource": _sub(ses_identities + "${" + SENDER_PARAMETER + "}"),
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
                # The keys of this account and region (the SecureStrings use aws/ssm), through SSM only.
                "Resource": _sub("arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"),
                "Condition": {"StringEquals": {"kms:ViaService": _sub("ssm.${AWS::Region}.amazonaws.com")}},
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file_name(function: str) -> str:
    return f"policy-{function.replace('_', '-')}.json"
