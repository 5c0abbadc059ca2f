"""Manifest signatures (vo2dr.signing) and key pinning (vo2dr.verify.decryption_keys).

The AWS KMS signer runs against moto's KMS (Sign/GetPublicKey with a real ECC_NIST_P256 key);
the Cloud KMS signer against a loopback HTTP server that implements the two Cloud KMS REST
calls it makes (asymmetricSign, publicKey) with a real P-256 key: the stub is at the API
boundary, the signer's request building and response parsing run for real."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto import mock_aws
from vo2dr.crypto import generate_recovery_key, recovery_key_id
from vo2dr.exceptions import ConfigError, EncryptionError
from vo2dr.manifest import Manifest
from vo2dr.signing import (
    AwsKmsSigner,
    CloudKmsSigner,
    LocalSigner,
    SignatureError,
    SigningFailed,
    TrustedKeys,
    generate_signing_key,
    key_fingerprint,
    load_public_keys,
    public_pem,
    sign_payload,
    signer_from_setting,
)
from vo2dr.trust import Trust
from vo2dr.verify import decryption_keys

from tests import signing_keys
from tests.unit.recovery_memstore import MemoryStore, add_backup

VERSION = ("projects/p/locations/europe-west1/keyRings/vo2dr-staging-standby-signing/"
           "cryptoKeys/vo2dr-staging-standby-signing/cryptoKeyVersions/1")


# -- local keys and the trust check ---------------------------------------------------------------

def test_a_signature_verifies_only_for_its_payload_and_a_trusted_key():
    signer = LocalSigner(signing_keys.PRIVATE)
    trusted = TrustedKeys.from_pem(signing_keys.TRUSTED)
    sig = sign_payload(signer, b"payload")
    assert trusted.check(b"payload", sig, "m") == key_fingerprint(signer.public_key())
    with pytest.raises(SignatureError, match="m has a signature that does not verify"):
        trusted.check(b"payload!", sig, "m")
    with pytest.raises(SignatureError, match="m is unsigned"):
        trusted.check(b"payload", None, "m")
    foreign = sign_payload(LocalSigner(signing_keys.FOREIGN_PRIVATE), b"payload")
    with pytest.raises(SignatureError, match="signed by an untrusted key"):
        trusted.check(b"payload", foreign, "m")
    # a foreign signature relabelled with a trusted key id still fails the math
    foreign.key_id = sig.key_id
    with pytest.raises(SignatureError, match="does not verify"):
        trusted.check(b"payload", foreign, "m")


def test_a_manifest_signature_covers_every_field():
    store = MemoryStore("s3")
    from datetime import UTC, datetime

    from vo2dr.layout import BackupRef

    manifest = add_backup([store], BackupRef("staging", "daily", "full",
                                             datetime(2025, 1, 1, tzinfo=UTC), "abcdefabcdef"))
    trusted = TrustedKeys.from_pem(signing_keys.TRUSTED)
    again = Manifest.from_json(manifest.to_json())
    assert again.verify_signature(trusted)
    for edit in (lambda m: setattr(m.tables[0], "rows", 4),
                 lambda m: setattr(m.ciphertext, "sha256", "0" * 64),
                 lambda m: m.encryption.encryption_context.update(backup_id="x"),
                 lambda m: setattr(m.encryption, "kms_key_arn", "arn:other")):
        edited = Manifest.from_json(manifest.to_json())
        edit(edited)
        with pytest.raises(SignatureError, match="does not verify"):
            edited.verify_signature(trusted)


def test_an_older_unsigned_manifest_parses_and_is_refused_as_unsigned():
    raw = json.loads(Manifest.from_json(_manifest_json()).to_json())
    raw.pop("signature")
    raw["format"] = "vo2dr-manifest/1"
    old = Manifest.from_json(json.dumps(raw))
    with pytest.raises(SignatureError, match="is unsigned"):
        old.verify_signature(TrustedKeys.from_pem(signing_keys.TRUSTED))


def _manifest_json() -> bytes:
    from datetime import UTC, datetime

    from vo2dr.layout import BackupRef

    return add_backup([MemoryStore("s3")], BackupRef(
        "staging", "daily", "full", datetime(2025, 1, 1, tzinfo=UTC), "abcdefabcde1")).to_json()


def test_public_key_bundles_are_checked():
    assert len(load_public_keys(signing_keys.TRUSTED)) == 2
    with pytest.raises(ConfigError, match="no PEM public key"):
        load_public_keys("nothing here")
    rsa_public = generate_recovery_key(3072)[1]
    with pytest.raises(ConfigError, match="EC P-256"):
        load_public_keys(rsa_public)


def test_signer_from_setting(tmp_path):
    assert isinstance(signer_from_setting("arn:aws:kms:us-east-1:1:key/k"), AwsKmsSigner)
    assert isinstance(signer_from_setting(VERSION), CloudKmsSigner)
    assert isinstance(signer_from_setting(signing_keys.PRIVATE.decode()), LocalSigner)
    path = tmp_path / "k.pem"
    path.write_bytes(signing_keys.PRIVATE)
    assert isinstance(signer_from_setting(str(path)), LocalSigner)
    with pytest.raises(ConfigError, match="VO2DR_SIGNING_KEY is neither"):
        signer_from_setting(str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="must be a key version"):
        CloudKmsSigner("projects/p/locations/l/keyRings/r/cryptoKeys/k")


# -- AWS KMS (moto) -------------------------------------------------------------------------------

def test_aws_kms_signer_against_moto(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        kms = boto3.client("kms")
        arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        signer = AwsKmsSigner(arn, kms)
        sig = sign_payload(signer, b"manifest")
        # Verified offline with the public half only, as every reader does.
        trusted = TrustedKeys.from_pem(public_pem(signer.public_key()))
        assert trusted.check(b"manifest", sig, "m") == sig.key_id
        assert sig.signer == arn
        with pytest.raises(SigningFailed, match=r"KMS sign with .* failed"):
            AwsKmsSigner(arn.replace(arn[-4:], "0000"), kms).sign(b"x")



def test_the_kms_signer_and_the_backups_encryption_share_one_aws_session(monkeypatch):
    """Each botocore session parses botocore's endpoint data and the KMS model again
    (:mod:`vo2dr.aws`): the signer's client and the Encryption SDK's, as a backup makes them,
    come from one session, and both work."""
    import traceback

    import botocore.session
    from vo2dr import aws
    from vo2dr.crypto import Encryptor

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(var, raising=False)
    made = []
    real_init = botocore.session.Session.__init__

    def counting(self, *args, **kwargs):
        if not any("/moto/" in frame.filename for frame in traceback.extract_stack()):
            made.append(self)  # the job's (moto makes sessions of its own for its backends)
        real_init(self, *args, **kwargs)

    _, recovery_pub = generate_recovery_key(3072)
    with mock_aws():
        kms = boto3.client("kms")
        sign_arn = kms.create_key(KeySpec="ECC_NIST_P256",
                                  KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        data_arn = kms.create_key()["KeyMetadata"]["Arn"]
        monkeypatch.setattr(botocore.session.Session, "__init__", counting)
        session = aws.Session()  # as vo2dr.backup.run_source_backup does
        signer = signer_from_setting(sign_arn, aws_session=session)
        assert sign_payload(signer, b"manifest").signer == sign_arn
        encryptor = Encryptor(kms_key_id=data_arn, recovery_public_key_pem=recovery_pub,
                              context={"a": "b"}, botocore_session=session.botocore_session())
        assert b"".join(encryptor.stream([b"x" * 10]))  # a data key from KMS, same session
    assert len(made) == 1


# -- Cloud KMS (REST API stub on loopback) --------------------------------------------------------

class _CloudKms(BaseHTTPRequestHandler):
    key = ec.generate_private_key(ec.SECP256R1())
    calls: list[tuple[str, str, dict]] = []
    deny = False

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # the http.server API
        type(self).calls.append(("GET", self.path, {}))
        if self.path == f"/v1/{VERSION}/publicKey":
            pem = public_pem(self.key.public_key()).decode()
            return self._reply(200, {"pem": pem, "algorithm": "EC_SIGN_P256_SHA256",
                                     "name": VERSION})
        return self._reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(("POST", self.path, body))
        if type(self).deny:
            return self._reply(403, {"error": {"message": "Permission 'cloudkms."
                                                          "cryptoKeyVersions.useToSign' denied"}})
        if self.path != f"/v1/{VERSION}:asymmetricSign":
            return self._reply(404, {"error": {"message": "not found"}})
        digest = base64.b64decode(body["digest"]["sha256"])
        sig = self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return self._reply(200, {"signature": base64.b64encode(sig).decode(), "name": VERSION})

    def log_message(self, *args):
        pass


@pytest.fixture
def cloud_kms():
    _CloudKms.calls, _CloudKms.deny = [], False
    server = HTTPServer(("127.0.0.1", 0), _CloudKms)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_cloud_kms_signer_speaks_the_rest_api(cloud_kms):
    signer = CloudKmsSigner(VERSION, session=requests.Session(), endpoint=cloud_kms)
    sig = sign_payload(signer, b"manifest")
    trusted = TrustedKeys.from_pem(public_pem(_CloudKms.key.public_key()))
    assert trusted.check(b"manifest", sig, "m") == sig.key_id
    [(_, path, body)] = [c for c in _CloudKms.calls if c[0] == "POST"]
    assert path == f"/v1/{VERSION}:asymmetricSign"
    assert set(body) == {"digest"} and len(base64.b64decode(body["digest"]["sha256"])) == 32
    _CloudKms.deny = True
    with pytest.raises(SigningFailed, match=r"HTTP 403 Permission .*useToSign' denied"):
        signer.sign(b"x")


def test_cloud_kms_signer_unreachable_is_one_line():
    signer = CloudKmsSigner(VERSION, session=requests.Session(), endpoint="http://127.0.0.1:9")
    with pytest.raises(SigningFailed, match="unreachable") as err:
        signer.public_key()
    assert "\n" not in str(err.value)


# -- key pinning ----------------------------------------------------------------------------------

def _manifest(kms_arn: str, recovery_id: str) -> Manifest:
    m = Manifest.from_json(_manifest_json())
    m.encryption.kms_key_arn = kms_arn
    m.encryption.recovery_key_id = recovery_id
    return m


def test_decryption_uses_the_configured_kms_key_never_the_manifests():
    configured = "arn:aws:kms:us-east-1:111111111111:key/ours"
    trust = Trust(signers=TrustedKeys(), kms_key_arn=configured)
    keys, used = decryption_keys(_manifest(configured, ""), None, trust)
    assert keys == {"kms_key_id": configured} and used == "kms"
    with pytest.raises(EncryptionError, match="not the configured key"):
        decryption_keys(_manifest("arn:aws:kms:us-east-1:999999999999:key/theirs", ""), None,
                        trust)
    with pytest.raises(EncryptionError, match="no KMS key is configured"):
        decryption_keys(_manifest(configured, ""), None, Trust())


def test_decryption_accepts_only_the_configured_recovery_key():
    private, public = generate_recovery_key(3072)
    other_private, other_public = generate_recovery_key(3072)
    rid = recovery_key_id(public)
    trust = Trust(recovery_key_id=rid)
    keys, used = decryption_keys(_manifest("", rid), private, trust)
    assert keys == {"recovery_private_key_pem": private}
    assert used == "recovery-key"
    # a backup wrapped for another recovery key, decrypted with that key: refused
    with pytest.raises(EncryptionError, match="not the configured recovery key"):
        decryption_keys(_manifest("", recovery_key_id(other_public)), other_private, trust)


def test_trust_requires_the_signing_public_keys():
    from vo2dr.settings import Settings

    with pytest.raises(ConfigError, match="VO2DR_SIGNING_PUBLIC_KEYS"):
        Trust.from_settings(Settings())
    trust = Trust.from_settings(Settings(signing_public_keys=signing_keys.TRUSTED,
                                         kms_key_id="arn:k"))
    assert len(trust.signers.keys) == 2 and trust.kms_key_arn == "arn:k"


def test_the_key_fingerprint_is_of_the_public_key_der():
    _, pub = generate_signing_key()
    key = serialization.load_pem_public_key(pub)
    assert key_fingerprint(key) in load_public_keys(pub)
