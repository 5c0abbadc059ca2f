"""Manifest signatures: every backup the job writes can be proven ours, offline.

The backup job signs each manifest (ECDSA P-256 over SHA-256 of its canonical JSON) with an
asymmetric key only the job identities may use: an AWS KMS ``SIGN_VERIFY`` key for the Lambda
job, a Cloud KMS ``EC_SIGN_P256_SHA256`` key for the Cloud Run standby. The signed manifest
commits to the body (ciphertext and plaintext SHA-256), the encryption context and the wrapped
data keys, so a valid signature vouches for every byte of the backup.

Verification needs no cloud: the public halves are plain configuration
(``VO2DR_SIGNING_PUBLIC_KEYS``, from the stack's ``signingPublicKeys``), and a signature is
checked with ``cryptography`` alone. An attacker who owns one store (or the recovery public
key, which is public) can write bytes, but cannot make a signature that verifies: see
``docs/backup-authenticity.md`` for the trust model.

Signers (:class:`Signer`): :class:`AwsKmsSigner`, :class:`CloudKmsSigner` (the Cloud KMS REST
API, through ``google-auth``), and :class:`LocalSigner` (a PEM private key, for tests and the
demo). ``VO2DR_SIGNING_KEY`` picks one: a KMS key ARN, a Cloud KMS key version name, or a PEM.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vo2dr.exceptions import ConfigError, IntegrityError, Vo2drError, one_line

ALGORITHM = "ECDSA_P256_SHA256"
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)
_CLOUD_KMS_VERSION = re.compile(
    r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/\d+$")
CLOUD_KMS_ENDPOINT = "https://cloudkms.googleapis.com"


class SignatureError(IntegrityError):
    """A manifest is unsigned, or its signature is not from a trusted key, or does not verify."""


class SigningFailed(Vo2drError):
    """The signer could not sign (KMS unreachable or denied, bad key)."""


# -- keys -----------------------------------------------------------------------------------------

def _p256_public(key: Any, what: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{what} must be an EC P-256 public key")
    return key


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """A signing key's id: hex SHA-256 of its DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_public_keys(pem: bytes | str) -> dict[str, ec.EllipticCurvePublicKey]:
    """Every ``PUBLIC KEY`` PEM block of ``pem`` (a bundle), by fingerprint."""
    data = pem.encode() if isinstance(pem, str) else pem
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        raise ConfigError("signing public keys: no PEM public key found "
                          "(expected one or more -----BEGIN PUBLIC KEY----- blocks)")
    out = {}
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise ConfigError(f"signing public keys: not a PEM public key: {exc}") from exc
        key = _p256_public(key, "a signing public key")
        out[key_fingerprint(key)] = key
    return out


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_signing_key() -> tuple[bytes, bytes]:
    """A new ``(private_pem, public_pem)`` P-256 pair, for tests and the demo (the cloud keys
    are made in KMS and never leave it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return private, public_pem(key.public_key())


# -- signers --------------------------------------------------------------------------------------

class Signer(Protocol):
    """Signs a short message (ECDSA P-256 over its SHA-256); DER signature out."""

    name: str  # where the key lives, for the manifest and messages (e.g. the KMS key ARN)

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


class LocalSigner:
    """A P-256 private key in a PEM (tests, the demo)."""

    def __init__(self, private_pem: bytes, name: str = "local") -> None:
        try:
            key = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"signing key is not a usable PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1):
            raise ConfigError("signing key must be an EC P-256 private key")
        self._key = key
        self.name = name

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


class AwsKmsSigner:
    """An AWS KMS asymmetric key (``SIGN_VERIFY``, ``ECC_NIST_P256``): ``kms:Sign`` of the
    (short, RAW) message, ``kms:GetPublicKey`` once for its public half."""

    def __init__(self, key_id: str, client: Any = None, *, session: Any = None) -> None:
        self._client = client  # made on first use (the region comes from the environment)
        self._session = session  # what makes it (a vo2dr.aws.Session); None: boto3's default
        self.name = key_id
        self._public: ec.EllipticCurvePublicKey | None = None

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        import boto3
        import botocore.exceptions

        try:
            if self._client is None:
                self._client = (self._session or boto3).client("kms")
            return getattr(self._client, op)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SigningFailed(f"KMS {op} with {self.name} failed: {one_line(exc)}") from exc

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            der = self._call("get_public_key", KeyId=self.name)["PublicKey"]
            self._public = _p256_public(serialization.load_der_public_key(der),
                                        f"KMS key {self.name}")
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._call("sign", KeyId=self.name, Message=message, MessageType="RAW",
                          SigningAlgorithm="ECDSA_SHA_256")["Signature"]


class CloudKmsSigner:
    """A Cloud KMS key version (``EC_SIGN_P256_SHA256``) through its REST API:
    ``POST v1/{name}:asymmetricSign`` and ``GET v1/{name}/publicKey``. ``session`` is any
    ``requests``-like session; by default an ``AuthorizedSession`` with the ambient Google
    credentials (the Cloud Run job's service account)."""

    def __init__(self, version_name: str, session: Any = None,
                 endpoint: str = CLOUD_KMS_ENDPOINT) -> None:
        if not _CLOUD_KMS_VERSION.match(version_name):
            raise ConfigError(f"Cloud KMS signing key {version_name!r} must be a key version: "
                              "projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N")
        self.name = version_name
        self._endpoint = endpoint.rstrip("/")
        self._session = session
        self._public: ec.EllipticCurvePublicKey | None = None

    def _http(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            try:
                creds, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloudkms"])
            except google.auth.exceptions.GoogleAuthError as exc:
                raise SigningFailed(f"no Google credentials for Cloud KMS: {one_line(exc)}") \
                    from exc
            self._session = AuthorizedSession(creds)
        return self._session

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict:
        import requests

        url = f"{self._endpoint}/v1/{path}"
        try:
            resp = self._http().request(method, url, json=body, timeout=30)
        except (requests.RequestException, OSError) as exc:
            raise SigningFailed(f"Cloud KMS {path} unreachable: {one_line(exc)}") from exc
        if resp.status_code != 200:
            try:
                message = resp.json().get("error", {}).get("message", "")
            except ValueError:
                message = resp.text[:200]
            raise SigningFailed(f"Cloud KMS refused {path}: HTTP {resp.status_code} {message}"
                                .strip())
        return resp.json()

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            out = self._request("GET", f"{self.name}/publicKey")
            if out.get("algorithm") not in (None, "EC_SIGN_P256_SHA256"):
                raise SigningFailed(f"Cloud KMS key {self.name} is {out.get('algorithm')}, "
                                    "expected EC_SIGN_P256_SHA256")
            self._public = _p256_public(serialization.load_pem_public_key(out["pem"].encode()),
                                        f"Cloud KMS key {self.name}")
        return self._public

    def sign(self, message: bytes) -> bytes:
        digest = hashlib.sha256(message).digest()  # Cloud KMS signs the caller's digest
        out = self._request("POST", f"{self.name}:asymmetricSign",
                            {"digest": {"sha256": base64.b64encode(digest).decode()}})
        try:
            return base64.b64decode(out["signature"], validate=True)
        except (KeyError, ValueError) as exc:
            raise SigningFailed(f"Cloud KMS returned no signature for {self.name}") from exc


def signer_from_setting(value: str, *, aws_session: Any = None) -> Signer:
    """``VO2DR_SIGNING_KEY``: a KMS key ARN, a Cloud KMS key version, or a PEM (text or file).
    ``aws_session`` (a :class:`vo2dr.aws.Session`) makes an AWS KMS signer's client."""
    value = value.strip()
    if value.startswith("arn:aws:kms:"):
        return AwsKmsSigner(value, session=aws_session)
    if value.startswith("projects/"):
        return CloudKmsSigner(value)
    if value.startswith("-----BEGIN"):
        return LocalSigner(value.encode())
    try:
        return LocalSigner(Path(value).read_bytes(), name=f"file:{Path(value).name}")
    except OSError as exc:
        raise ConfigError("VO2DR_SIGNING_KEY is neither a KMS key ARN, a Cloud KMS key version, "
                          f"a PEM nor a readable file: {exc}") from exc


# -- signing and verifying a payload -------------------------------------------------------------

@dataclass
class Signature:
    key_id: str  # fingerprint of the public key (see key_fingerprint)
    signer: str  # where the key lives (KMS key ARN, Cloud KMS version), informative only
    value: str  # base64 DER ECDSA signature
    algorithm: str = ALGORITHM


def statement(payload: bytes) -> bytes:
    """What is actually signed: a short, domain-separated commitment to the payload's SHA-256
    (KMS signs RAW messages of at most 4096 bytes; a manifest can be longer)."""
    return b"vo2dr-manifest-signature/1\nsha256:" + hashlib.sha256(payload).hexdigest().encode()


def sign_payload(signer: Signer, payload: bytes) -> Signature:
    value = signer.sign(statement(payload))
    return Signature(key_id=key_fingerprint(signer.public_key()), signer=signer.name,
                     value=base64.b64encode(value).decode())


@dataclass(frozen=True)
class TrustedKeys:
    """The signing public keys a backup may be signed by (by fingerprint)."""

    keys: Mapping[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> TrustedKeys:
        return cls(load_public_keys(pem))

    @classmethod
    def of(cls, keys: Iterable[ec.EllipticCurvePublicKey]) -> TrustedKeys:
        return cls({key_fingerprint(k): k for k in keys})

    def check(self, payload: bytes, signature: Signature | None, what: str) -> str:
        """The signing key's id if ``signature`` is a valid signature of ``payload`` by a
        trusted key; else :class:`SignatureError` with a one-line reason."""
        if signature is None:
            raise SignatureError(f"{what} is unsigned: refused (not proven to be ours)")
        if signature.algorithm != ALGORITHM:
            raise SignatureError(f"{what} is signed with {signature.algorithm!r}, "
                                 f"expected {ALGORITHM}: refused")
        key = self.keys.get(signature.key_id)
        if key is None:
            raise SignatureError(f"{what} is signed by an untrusted key "
                                 f"{signature.key_id[:16]}…: refused")
        try:
            key.verify(base64.b64decode(signature.value, validate=True), statement(payload),
                       ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(f"{what} has a signature that does not verify (edited or "
                                 "forged): refused") from exc
        return signature.key_id
