"""WebAuthn ceremonies (A1) on top of py_webauthn: the terminal's fingerprint reader as a platform
authenticator, **user verification required** (a touch alone is not enough), attestation ``none``.

Credentials are bound to the relying party ``SecurityConfig.rp_id`` and the allowed origins; the
options are handed to the browser as JSON (``PublicKeyCredential.parse*OptionsFromJSON``) and the
browser's ``credential.toJSON()`` comes back for verification.
"""

from __future__ import annotations

import json

from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.structs import (AuthenticatorAttachment, AuthenticatorSelectionCriteria, AuthenticatorTransport,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)


class CeremonyFailed(Exception):
    """The authenticator's answer did not verify (the reason is not shown to the user)."""


def b64(b: bytes) -> str:
    return bytes_to_base64url(b)


def registration_options(cfg, operator_id: str, display_name: str, existing: list[str]) -> tuple[dict, bytes]:
    opts = generate_registration_options(
        rp_id=cfg.rp_id, rp_name=cfg.rp_name, user_id=operator_id.encode("utf-8"), user_name=operator_id,
        user_display_name=display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing],
        timeout=120000)
    return json.loads(options_to_json(opts)), opts.challenge


def authentication_options(cfg, credential_ids: list[str]) -> tuple[dict, bytes]:
    opts = generate_authentication_options(
        rp_id=cfg.rp_id, user_verification=UserVerificationRequirement.REQUIRED, timeout=120000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c),
                                                         transports=[AuthenticatorTransport.INTERNAL])
                           for c in credential_ids])
    return json.loads(options_to_json(opts)), opts.challenge


def verify_registration(cfg, origins: list[str], credential: dict, challenge_b64: str):
    try:
        return verify_registration_response(credential=credential, expected_challenge=base64url_to_bytes(challenge_b64),
                                            expected_rp_id=cfg.rp_id, expected_origin=origins,
                                            require_user_verification=True)
    except Exception as e:  # noqa: BLE001 - py_webauthn raises several types; all mean "refused"
        raise CeremonyFailed(type(e).__name__) from e


def verify_authentication(cfg, origins: list[str], credential: dict, challenge_b64: str, public_key: bytes,
                          sign_count: int):
    try:
        return verify_authentication_response(credential=credential, expected_challenge=base64url_to_bytes(challenge_b64),
                                              expected_rp_id=cfg.rp_id, expected_origin=origins,
                                              credential_public_key=public_key,
                                              credential_current_sign_count=sign_count,
                                              require_user_verification=True)
    except Exception as e:  # noqa: BLE001
        raise CeremonyFailed(type(e).__name__) from e
