"""A software WebAuthn authenticator for tests: P-256 keys from `cryptography`, and the
attestation object, authenticatorData and clientDataJSON built byte by byte as the WebAuthn
spec lays them out, so a test can provoke any refusal exactly (a wrong origin, a missing
flag, a sign count that went back)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ORIGIN = "http://testserver"  # chalice.test.Client's host (the unit stage sets no PUBLIC_BASE_URL)
RP_ID = "testserver"
UP, UV, AT = 0x01, 0x04, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    key: ec.EllipticCurvePrivateKey
    credential_id: bytes
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """A platform authenticator with user verification and resident keys, in memory."""

    def __init__(self) -> None:
        self.credentials: list[Credential] = []

    def create(self, options: dict[str, Any], *, origin: str = ORIGIN, flags: int = UP | UV | AT) -> dict[str, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        credential = Credential(key, os.urandom(16), unb64(options["user"]["id"]))
        self.credentials.append(credential)
        attested = bytes(16) + len(credential.credential_id).to_bytes(2, "big") + credential.credential_id + cose
        auth_data = hashlib.sha256(options["rp"]["id"].encode()).digest() + bytes([flags]) + bytes(4) + attested
        client_data = {"type": "webauthn.create", "challenge": options["challenge"], "origin": origin}
        return {
            "id": b64(credential.credential_id),
            "rawId": b64(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(json.dumps(client_data).encode()),
                "attestationObject": b64(cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str = ORIGIN,
        flags: int = UP | UV,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """An assertion by `credential` (default: the first allowed one, else the first held)."""
        if credential is None:
            allowed = {unb64(item["id"]) for item in options.get("allowCredentials") or []}
            credential = next(c for c in self.credentials if not allowed or c.credential_id in allowed)
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest()
            + bytes([flags])
            + credential.sign_count.to_bytes(4, "big")
        )
        client_data = json.dumps({"type": "webauthn.get", "challenge": options["challenge"], "origin": origin}).encode()
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(credential.credential_id),
            "rawId": b64(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(credential.user_handle),
            },
            "clientExtensionResults": {},
        }
