"""The answers' shapes, named for `Answer(schema="...")`: the response side of the document
(requests are declared per route in `routes.py`)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.declare import page_of

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "example": "validation_error"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": True},
                },
            }
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "username": {"type": "string"},
            "email": {
                "type": "string",
                "nullable": True,
                "description": "Null once another account verified this address first.",
            },
            "email_verified": {"type": "boolean"},
            "is_staff": {"type": "boolean"},
            "is_superuser": {"type": "boolean"},
            "has_paid": {"type": "boolean"},
            "mfa_enabled": {"type": "boolean", "description": "A confirmed TOTP second factor."},
            "passkeys": {"type": "integer", "description": "How many passkeys the account has registered."},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Passkey": {
        "type": "object",
        "required": ["id", "name", "created_at", "last_used_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_used_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "PasskeyPage": page_of("Passkey"),
    "WebAuthnOptions": {
        "type": "object",
        "additionalProperties": True,
        "description": "The JSON form of WebAuthn's creation or request options (base64url byte fields), "
        "for `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`.",
    },
    "Tokens": {
        "type": "object",
        "properties": {
            "access": {"type": "string"},
            "refresh": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "description": "Access token lifetime in seconds."},
            "refresh_expires_in": {"type": "integer"},
        },
    },
    "Activity": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "action": {"type": "string"},
            "user_id": {"type": "string", "nullable": True},
            "actor_id": {"type": "string", "nullable": True},
            "metadata": {"type": "object", "additionalProperties": True},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "ActivityPage": page_of("Activity"),
    "Usage": {
        "type": "object",
        "description": "Fair use: the caller's files that are not `deleted` and their declared sizes, with the "
        "limits (`MAX_FILES_PER_USER`, `MAX_BYTES_PER_USER`). A `pending_upload` counts until "
        "it arrives or expires.",
        "required": ["files", "bytes", "max_files", "max_bytes"],
        "properties": {
            "files": {"type": "integer", "minimum": 0},
            "bytes": {"type": "integer", "minimum": 0},
            "max_files": {"type": "integer", "minimum": 0},
            "max_bytes": {"type": "integer", "minimum": 0},
        },
    },
    "AdminPayment": {
        "allOf": [
            {"$ref": "#/components/schemas/Payment"},
            {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string", "description": "The payer."},
                    "failure_reason": {
                        "type": "string",
                        "nullable": True,
                        "description": " For a payment that expired while "
                        "the gateway's success did not "
                        "match it, which fields differed.",
                    },
                    "username": {
                        "type": "string",
                        "nullable": True,
                        "description": "The owner's username (null if the account no longer exists).",
                    },
                    "review_reason": {
                        "type": "string",
                        "nullable": True,
                        "description": "Why the payment waits in `review` (the card's risk flag).",
                    },
                    "amount_bdt": {
                        "type": "string",
                        "nullable": True,
                        "description": "What the gateway charged in taka (the merchant's currency may be another).",
                    },
                },
            },
        ]
    },
    "AdminFile": {
        "allOf": [
            {"$ref": "#/components/schemas/File"},
            {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string", "description": "The uploader."},
                    "username": {
                        "type": "string",
                        "nullable": True,
                        "description": "The owner's username (null if the account no longer exists).",
                    },
                },
            },
        ]
    },
    "Stats": {
        "type": "object",
        "required": ["users", "payments", "revenue", "files", "words_counted"],
        "properties": {
            "users": {"type": "integer"},
            "payments": {
                "type": "object",
                "required": ["initiated", "success", "failed", "cancelled", "expired"],
                "properties": {
                    "initiated": {"type": "integer"},
                    "success": {"type": "integer"},
                    "review": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "cancelled": {"type": "integer"},
                    "expired": {"type": "integer"},
                },
            },
            "revenue": {
                "type": "object",
                "description": "Successful payments' total per currency, a decimal string.",
                "additionalProperties": {"type": "string"},
                "example": {"BDT": "100.00"},
            },
            "files": {
                "type": "object",
                "required": ["pending_upload", "processing", "completed", "failed", "deleted"],
                "properties": {
                    "pending_upload": {"type": "integer"},
                    "processing": {"type": "integer"},
                    "completed": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "deleted": {"type": "integer", "description": "deleted by their owners (records kept for staff)"},
                },
            },
            "words_counted": {"type": "integer", "description": "Sum of the word counts of completed files."},
        },
    },
    "AdminActivity": {
        "allOf": [
            {"$ref": "#/components/schemas/Activity"},
            {
                "type": "object",
                "properties": {
                    "username": {"type": "string", "nullable": True, "description": "The username of `user_id`."},
                    "actor_username": {
                        "type": "string",
                        "nullable": True,
                        "description": "The username of `actor_id` (null when no actor).",
                    },
                },
            },
        ]
    },
    "DailyStats": {
        "type": "object",
        "required": ["currency", "days"],
        "properties": {
            "currency": {"type": "string", "example": "BDT"},
            "days": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "date",
                        "users",
                        "payments_success",
                        "payments_failed",
                        "revenue",
                        "files_completed",
                        "files_failed",
                        "words",
                    ],
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        "users": {"type": "integer"},
                        "payments_success": {"type": "integer"},
                        "payments_failed": {"type": "integer"},
                        "revenue": {"type": "string", "example": "100.00"},
                        "files_completed": {"type": "integer"},
                        "files_failed": {"type": "integer"},
                        "words": {"type": "integer"},
                    },
                },
            },
        },
    },
    "File": {
        "type": "object",
        "required": ["id", "filename", "size", "status", "word_count", "error", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "size": {
                "type": "integer",
                "description": "Declared size until the object is counted, then its real size.",
            },
            "status": {
                "type": "string",
                "enum": ["pending_upload", "processing", "completed", "failed", "deleted"],
                "description": "`deleted` is seen by staff only: its owner gets 404 for a deleted file.",
            },
            "word_count": {"type": "integer", "nullable": True, "description": "Set once completed."},
            "error": {"type": "string", "nullable": True, "description": "A short reason once failed."},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "FileWithDownload": {
        "allOf": [
            {"$ref": "#/components/schemas/File"},
            {
                "type": "object",
                "properties": {
                    "download_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "Presigned S3 GET (attachment), present once the object is stored.",
                    }
                },
            },
        ]
    },
    "FilePage": page_of("File"),
    "PresignedPost": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "key, Content-Type, policy, x-amz-algorithm, "
                "x-amz-credential, x-amz-date, x-amz-signature (and "
                "x-amz-security-token on AWS).",
            },
            "expires_at": {"type": "string", "format": "date-time"},
            "max_bytes": {"type": "integer"},
        },
    },
    "Export": {
        "type": "object",
        "required": ["user", "payments", "files", "activity"],
        "properties": {
            "user": {
                "allOf": [{"$ref": "#/components/schemas/User"}],
                "description": "the account, with its `language` and `usage`",
            },
            "payments": {"type": "array", "items": {"$ref": "#/components/schemas/Payment"}},
            "files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
            "activity": {"type": "array", "items": {"$ref": "#/components/schemas/Activity"}},
        },
    },
    "MfaChallenge": {
        "type": "object",
        "required": ["mfa_required", "mfa_token", "expires_in"],
        "description": "The answer to a right password on an account with a second factor: no session "
        "yet, send the mfa_token and a code to POST /api/login/mfa/.",
        "properties": {
            "mfa_required": {"type": "boolean", "enum": [True]},
            "mfa_token": {"type": "string", "description": "never accepted as an access token"},
            "expires_in": {"type": "integer", "description": "seconds (300)"},
        },
    },
    "Payment": {
        "type": "object",
        "properties": {
            "transaction_id": {
                "type": "string",
                "description": "Our id, 32 hex characters; aamarPay's tran_id / mer_txnid.",
            },
            "status": {"type": "string", "enum": ["initiated", "success", "review", "failed", "cancelled", "expired"]},
            "amount": {"type": "string", "example": "100.00"},
            "currency": {"type": "string", "example": "BDT"},
            "gateway_transaction_id": {
                "type": "string",
                "nullable": True,
                "description": "aamarPay's pg_txnid once known.",
            },
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "review_reason": {
                "type": "string",
                "nullable": True,
                "description": "Present while the payment is in `review`: why it "
                "waits for a superuser (the card's risk flag).",
            },
        },
    },
    "PaymentInitiated": {
        "type": "object",
        "properties": {
            "transaction_id": {"type": "string"},
            "payment_url": {
                "type": "string",
                "format": "uri",
                "nullable": True,
                "description": "Null only on an Idempotency-Key replay of a "
                "payment the gateway never gave a page for "
                "(it timed out) that has since been settled.",
            },
            "status": {"type": "string", "example": "initiated"},
            "amount": {"type": "string", "example": "100.00"},
            "currency": {"type": "string", "example": "BDT"},
        },
    },
    "PaymentPage": page_of("Payment"),
    "ReturnAnswer": {
        "type": "object",
        "properties": {
            "transaction_id": {"type": "string"},
            "status": {"type": "string", "enum": ["initiated", "success", "review", "failed", "cancelled", "expired"]},
        },
    },
    "GatewayReturnForm": {
        "type": "object",
        "description": "aamarPay's unsigned form (see docs); only mer_txnid is read, everything else is ignored.",
        "properties": {
            "mer_txnid": {"type": "string"},
            "pay_status": {"type": "string"},
            "status_code": {"type": "string"},
            "pg_txnid": {"type": "string"},
            "amount": {"type": "string"},
            "currency": {"type": "string"},
            "store_id": {"type": "string"},
        },
        "additionalProperties": {"type": "string"},
    },
}
