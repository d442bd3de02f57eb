"""Sign in with a passkey: discoverable (no username typed) or username-first.

The options name the challenge's account when a username is given (its credentials listed),
and no account otherwise (the authenticator offers its discoverable credentials and answers
the user handle, our user id). The answer has the same shape whether or not the username
exists: an unknown name, or an account without passkeys, gets one made-up credential id
derived from the name (stable, so repeated asks look alike) and a challenge bound to nobody.

The assertion is verified by py_webauthn (origin, rp id hash, challenge, user presence and
verification, signature); then the sign count, which must rise unless the authenticator
keeps none (0 both times): a count that did not is a cloned authenticator, refused and
logged as a security event. One transaction commits the sign-in: the challenge spent (once),
the passkey's count and last use (only if the count is still the one read), the `login`
entry; the account must still exist under the same token epoch. The session counts as
having passed a second factor (`mfa: true`): staff reach the admin routes with it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.accounts import accounts, passkey_challenges, passkeys, tokens
from chalicelib.core import activity, clock, errors, logs, metrics
from chalicelib.core.config import app_secrets
from chalicelib.core.db import CONDITION_FAILED, cancellation_codes, transact_write
from chalicelib.core.models import Passkey, User
from chalicelib.core.validation import Fields

log = logs.get("passkeys")


def _decoy_credential_id(username: str) -> bytes:
    """A credential id for a name with no passkeys: stable per name, unguessable without our key."""
    key = hashlib.sha256(b"passkey-decoy:" + app_secrets().jwt_signing_key.encode()).digest()
    return hmac.new(key, username.casefold().encode(), hashlib.sha256).digest()


def options(body: dict[str, Any], *, base_url: str) -> dict[str, Any]:
    """`PublicKeyCredentialRequestOptions` as JSON (see the module's docstring)."""
    import json

    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import (
        AuthenticatorTransport,
        PublicKeyCredentialDescriptor,
        UserVerificationRequirement,
    )

    fields = Fields(body)
    username = fields.string("username", required=False, max_length=254)
    fields.done()
    bound, allowed = "", []
    if username and username.strip():
        owner_id = accounts.claim_owner(username.strip())
        owned = passkeys.owned(owner_id) if owner_id else []
        allowed = [
            PublicKeyCredentialDescriptor(
                id=base64url_to_bytes(item.credential_id),
                transports=[AuthenticatorTransport(t) for t in sorted(item.transports or ()) if _known_transport(t)],
            )
            for item in owned
        ] or [  # looks like a platform passkey's entry
            PublicKeyCredentialDescriptor(
                id=_decoy_credential_id(username.strip()), transports=[AuthenticatorTransport.INTERNAL]
            )
        ]
        bound = owner_id if owned and owner_id else clock.new_id()  # nobody's, when there is nothing to sign in to
    rp_id, _ = passkeys.relying_party(base_url)
    generated = generate_authentication_options(
        rp_id=rp_id,
        challenge=passkey_challenges.issue(passkey_challenges.LOGIN, bound),
        timeout=passkeys.CEREMONY_TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    answer: dict[str, Any] = json.loads(options_to_json(generated))
    return answer


def _known_transport(name: str) -> bool:
    from webauthn.helpers.structs import AuthenticatorTransport

    return name in {t.value for t in AuthenticatorTransport}


def _refused(user_id: str | None, reason: str, error: Exception | None = None) -> errors.ApiError:
    activity.record("login_failed", user_id, metadata={"reason": reason, "method": "passkey"})
    metrics.count("LoginsFailed")
    logs.event(
        log, "passkey sign-in refused", reason=reason, error=f"{type(error).__name__}: {error}"[:200] if error else None
    )
    return errors.Unauthorized("That passkey cannot sign you in.", code="invalid_credentials")


def _user_handle(raw: bytes | None) -> str:
    try:
        handle = raw.decode() if raw else ""
    except UnicodeDecodeError:
        return ""
    return handle if clock.is_id(handle) else ""


def complete_login(body: dict[str, Any], *, base_url: str) -> dict[str, Any]:
    """Verify an assertion: tokens marked `mfa: true`; 401 invalid_credentials otherwise."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import (
        base64url_to_bytes,
        bytes_to_base64url,
        parse_authentication_credential_json,
        parse_client_data_json,
    )

    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise errors.ValidationError("Some fields are invalid.", details={"credential": "The browser's credential."})
    try:
        parsed = parse_authentication_credential_json(credential)
        raw = parse_client_data_json(parsed.response.client_data_json).challenge
        challenge = passkey_challenges.read(raw, passkey_challenges.LOGIN)
        handle = _user_handle(parsed.response.user_handle)
        credential_id = bytes_to_base64url(parsed.raw_id)
    except passkey_challenges.InvalidChallenge:
        raise _refused(None, "unknown_or_expired_challenge") from None
    except Exception as error:  # (hostile input: any parse failure is the client's)
        raise _refused(None, "malformed_assertion", error) from None
    user_id = challenge.user_id or handle
    if not user_id or (handle and handle != user_id):
        raise _refused(None, "no_account_named")
    try:
        user = User.get(user_id, consistent_read=True)
    except DoesNotExist:
        raise _refused(None, "unknown_account") from None
    passkey = next((item for item in passkeys.owned(user_id) if item.credential_id == credential_id), None)
    if passkey is None:
        raise _refused(user.id, "unknown_passkey")
    rp_id, origin = passkeys.relying_party(base_url)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge.raw,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=0,  # compared below, once the signature is known good
            require_user_verification=True,
        )
    except Exception as error:  # (the verifier raises several kinds for hostile input)
        raise _refused(user.id, "assertion_did_not_verify", error) from None
    stored, presented = int(passkey.sign_count or 0), int(verified.new_sign_count)
    if (stored or presented) and presented <= stored:
        _cloned(user.id, passkey, stored, presented)
        raise _refused(user.id, "sign_count_went_back")
    _commit(user, passkey, challenge, stored, presented)
    return tokens.issue_pair(user.id, accounts.epoch_of(user), mfa=True)


def _cloned(user_id: str, passkey: Passkey, stored: int, presented: int) -> None:
    """The security event: an authenticator answered a count at or below the last one seen."""
    logs.event(
        log,
        "passkey sign count went back: possibly a cloned authenticator",
        logging.WARNING,
        user_id=user_id,
        passkey_id=passkey.id,
        stored_sign_count=stored,
        presented_sign_count=presented,
    )


def _commit(user: User, passkey: Passkey, challenge: passkey_challenges.Challenge, stored: int, presented: int) -> None:
    used: list[Action] = [Passkey.sign_count.set(presented), Passkey.last_used_at.set(clock.now_iso())]
    unchanged = Passkey.sk.exists() & (Passkey.sign_count == stored)
    entry = activity.entry("login", user.id, metadata={"method": "passkey", "passkey_id": passkey.id})
    try:
        with transact_write() as transaction:
            transaction.condition_check(User, user.id, condition=User.id.exists() & accounts.same_epoch(user))
            transaction.save(passkey_challenges.spent(challenge), condition=passkey_challenges.unspent())
            transaction.save(entry)
            transaction.update(passkey, actions=used, condition=unchanged)
    except TransactWriteError as error:
        reasons = cancellation_codes(error)
        if reasons[1:2] == [CONDITION_FAILED]:
            raise _refused(user.id, "challenge_already_used") from None
        if CONDITION_FAILED in reasons:  # removed, used in parallel, or the account changed meanwhile
            raise _refused(user.id, "passkey_or_account_changed") from None
        raise
