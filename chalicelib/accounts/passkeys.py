"""Passkeys (WebAuthn): register, list and remove a signed-in user's credentials.

Verification is py_webauthn's (`webauthn`, imported inside the functions that need it: only
these routes pay for it at a cold start). Attestation `none`, user verification required,
discoverable credentials (resident keys) asked for, the relying party id the host of the
public base URL and the expected origin its scheme, host and port.

Adding or removing a passkey asks for a *fresh* session (`require_fresh`): one that proved
a password, a TOTP or recovery code, or a passkey at most `FRESH_SECONDS` ago (a refresh keeps
the time of that proof). A staff member or superuser whose account has a second factor (TOTP
or a passkey) must also have passed it in this session: a passkey opens the admin routes, so
a stolen password alone must not be able to add one (`require_factor_if_staff`, which TOTP
enrolment asks too). A customer's passkey grants nothing the password does not, so the fresh
password is enough there, and a customer who lost a passkey removes it after a password log-in
(plus a TOTP or recovery code when the account has TOTP). A user holds at most `MAX_PASSKEYS`.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import TransactWriteError

from chalicelib.accounts import accounts, passkey_challenges
from chalicelib.accounts.accounts import Principal
from chalicelib.core import activity, clock, errors, logs, pagination
from chalicelib.core.config import settings
from chalicelib.core.db import CONDITION_FAILED, cancellation_codes, transact_write
from chalicelib.core.models import Claim, Passkey, User
from chalicelib.core.validation import Fields

MAX_PASSKEYS = 10
FRESH_SECONDS = 10 * 60
MAX_NAME_LENGTH = 64
MAX_CREDENTIAL_FIELD = 16_384  # characters of one base64url field of a credential
CEREMONY_TIMEOUT_MS = passkey_challenges.CHALLENGE_SECONDS * 1000

log = logs.get("passkeys")


class InvalidCredential(errors.ApiError):
    status, code = 400, "invalid_credential"


def relying_party(base_url: str) -> tuple[str, str]:
    """(rp id, origin) of the public base URL: `https://pay.example.com/api` -> the host, and
    the origin a browser puts in `clientDataJSON`."""
    parts = urlsplit(base_url)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def claim_key(credential_id: str) -> str:
    """The claim that makes a credential id unique across accounts (hashed: ids run to 1023 bytes)."""
    return "passkey#" + hashlib.sha256(credential_id.encode()).hexdigest()


def require_fresh(principal: Principal) -> None:
    """403 reauthentication_required unless the session is fresh (see the module's docstring)."""
    if clock.now().timestamp() - principal.claims.auth_time > FRESH_SECONDS:
        raise _log_in_again()
    require_factor_if_staff(principal)


def require_factor_if_staff(principal: Principal) -> None:
    """403 reauthentication_required for a staff session that did not pass the account's factor."""
    user = principal.user
    staff = bool(user.is_staff or user.is_superuser)
    if staff and accounts.has_second_factor(user) and not principal.claims.mfa:
        raise _log_in_again()


def _log_in_again() -> errors.ApiError:
    return errors.Forbidden(
        "Log in again (with your second factor, if you have one) to change your passkeys.",
        code="reauthentication_required",
    )


def view(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": passkey.id,
        "name": passkey.name,
        "created_at": passkey.created_at,
        "last_used_at": passkey.last_used_at,
    }


def owned(user_id: str) -> list[Passkey]:
    """Every passkey of the account (one Query of its partition, at most MAX_PASSKEYS items)."""
    return list(Passkey.query(user_id, consistent_read=True))


def list_for_user(user_id: str, limit: int, cursor: str | None) -> pagination.Page:
    scope = f"passkeys:{user_id}"
    return pagination.query_page(scope, cursor, limit, pagination.newest_first(Passkey.query, user_id))


def _too_many() -> errors.ApiError:
    return errors.Conflict(f"You have {MAX_PASSKEYS} passkeys already; remove one first.", code="too_many_passkeys")


def registration_options(principal: Principal, *, base_url: str) -> dict[str, Any]:
    """`PublicKeyCredentialCreationOptions` as JSON, the account's credentials excluded."""
    import json

    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    require_fresh(principal)
    user = principal.user
    if accounts.passkey_count(user) >= MAX_PASSKEYS:
        raise _too_many()
    rp_id, _ = relying_party(base_url)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=settings().mfa_issuer,
        user_name=user.username,
        user_id=user.id.encode(),
        challenge=passkey_challenges.issue(passkey_challenges.REGISTER, user.id),
        timeout=CEREMONY_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(item.credential_id)) for item in owned(user.id)
        ],
    )
    answer: dict[str, Any] = json.loads(options_to_json(options))
    return answer


def _registration_fields(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    fields = Fields(body)
    name = fields.string("name", max_length=MAX_NAME_LENGTH)
    credential = body.get("credential")
    if not isinstance(credential, dict):
        fields.fail("credential", "The browser's PublicKeyCredential, as JSON.")
    fields.done()
    assert name is not None and isinstance(credential, dict)
    return credential, name.strip()


def _refused(message: str, error: Exception | None = None) -> InvalidCredential:
    logs.event(
        log,
        "passkey registration refused",
        reason=message,
        error=f"{type(error).__name__}: {error}"[:200] if error else None,
    )
    return InvalidCredential(f"The passkey could not be registered: {message}")


def register(principal: Principal, body: dict[str, Any], *, base_url: str) -> dict[str, Any]:
    """Verify the browser's new credential against its challenge and store it (201)."""
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url, parse_client_data_json, parse_registration_credential_json

    require_fresh(principal)
    credential, name = _registration_fields(body)
    user = principal.user
    rp_id, origin = relying_party(base_url)
    try:
        parsed = parse_registration_credential_json(credential)
        raw = parse_client_data_json(parsed.response.client_data_json).challenge
        challenge = passkey_challenges.read(raw, passkey_challenges.REGISTER)
    except passkey_challenges.InvalidChallenge as error:
        raise _refused(error.message) from None
    except Exception as error:  # (hostile input: any parse failure is the client's)
        raise _refused("it is not a WebAuthn credential.", error) from None
    if challenge.user_id != user.id:
        raise _refused("the challenge was issued to another account.")
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge.raw,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except Exception as error:  # (the verifier raises several kinds for hostile input)
        raise _refused("it did not verify (origin, challenge, user verification or signature).", error) from None
    created_at = clock.now_iso()
    passkey_id = clock.new_id()
    credential_id = bytes_to_base64url(verified.credential_id)
    transports = {str(getattr(t, "value", t)) for t in (parsed.response.transports or [])}
    passkey = Passkey(
        user.id,
        f"{created_at}#{passkey_id}",
        id=passkey_id,
        name=name,
        credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=transports or None,
        aaguid=verified.aaguid,
        created_at=created_at,
    )
    below_cap = User.passkey_count.does_not_exist() | (User.passkey_count < MAX_PASSKEYS)
    try:
        with transact_write() as transaction:
            transaction.save(passkey_challenges.spent(challenge), condition=passkey_challenges.unspent())
            claim = Claim(claim_key(credential_id), owner_id=user.id, created_at=created_at)
            transaction.save(claim, condition=Claim.key.does_not_exist())
            transaction.save(passkey, condition=Passkey.sk.does_not_exist())
            transaction.save(activity.entry("passkey_added", user.id, metadata={"passkey_id": passkey_id}))
            transaction.update(
                User(user.id),
                actions=[User.passkey_count.add(1)],
                condition=User.id.exists() & below_cap & accounts.same_epoch(user),
            )
    except TransactWriteError as error:
        reasons = cancellation_codes(error)
        if reasons[:1] == [CONDITION_FAILED]:
            raise _refused("this challenge was used already.") from None
        if reasons[1:2] == [CONDITION_FAILED]:
            raise _refused("this passkey is registered already.") from None
        if reasons[4:5] == [CONDITION_FAILED]:
            raise _too_many() from None
        raise
    return view(passkey)


def remove(principal: Principal, passkey_id: str) -> None:
    """Remove one of the caller's passkeys (404 not_found for any other id)."""
    require_fresh(principal)
    user = principal.user
    found = next((item for item in owned(user.id) if item.id == passkey_id), None)
    if found is None:
        raise errors.NotFound("No such passkey.", code="not_found")
    try:
        with transact_write() as transaction:
            transaction.delete(found, condition=Passkey.sk.exists())
            transaction.delete(Claim(claim_key(found.credential_id)), condition=Claim.owner_id == user.id)
            transaction.save(activity.entry("passkey_removed", user.id, metadata={"passkey_id": passkey_id}))
            transaction.update(User(user.id), actions=[User.passkey_count.add(-1)], condition=User.id.exists())
    except TransactWriteError as error:
        if CONDITION_FAILED in cancellation_codes(error):  # a parallel removal won
            raise errors.NotFound("No such passkey.", code="not_found") from None
        raise


def forget_all(user: User) -> int:
    """An account's deletion: every passkey and its claim go (safe to run again; no read at
    all for an account that never had one)."""
    if not accounts.passkey_count(user):
        return 0
    items = owned(user.id)
    for item in items:
        with transact_write() as transaction:
            transaction.delete(item)
            transaction.delete(Claim(claim_key(item.credential_id)))
    return len(items)
