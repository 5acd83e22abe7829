"""A software WebAuthn platform authenticator for server-side tests (P-256, attestation "none").

It lets the tests produce exactly the bytes a fingerprint reader would, including assertions
*without* user verification, which a real browser refuses to produce when UV is required.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class SoftAuthenticator:
    def __init__(self):
        self.creds: dict[bytes, tuple[ec.EllipticCurvePrivateKey, str, int]] = {}

    def create(self, options: dict, origin: str, *, uv: bool = True) -> dict:
        rp_id = options["rp"]["id"]
        cred_id = os.urandom(32)
        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: nums.x.to_bytes(32, "big"), -3: nums.y.to_bytes(32, "big")})
        flags = 0x01 | (0x04 if uv else 0) | 0x40
        auth = (hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", 0)
                + b"\0" * 16 + struct.pack(">H", len(cred_id)) + cred_id + cose)
        client = json.dumps({"type": "webauthn.create", "challenge": options["challenge"], "origin": origin,
                             "crossOrigin": False}).encode()
        self.creds[cred_id] = (key, rp_id, 0)
        return {"id": b64u(cred_id), "rawId": b64u(cred_id), "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client), "transports": ["internal"],
                             "attestationObject": b64u(cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth}))}}

    def get(self, options: dict, origin: str, *, uv: bool = True, challenge: str | None = None) -> dict:
        allowed = [unb64u(c["id"]) for c in options.get("allowCredentials", [])]
        cred_id = next(c for c in allowed if c in self.creds)
        key, rp_id, count = self.creds[cred_id]
        count += 1
        self.creds[cred_id] = (key, rp_id, count)
        flags = 0x01 | (0x04 if uv else 0)
        auth = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
        client = json.dumps({"type": "webauthn.get", "challenge": challenge or options["challenge"], "origin": origin,
                             "crossOrigin": False}).encode()
        sig = key.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(cred_id), "rawId": b64u(cred_id), "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client), "authenticatorData": b64u(auth), "signature": b64u(sig)}}
