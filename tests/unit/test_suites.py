"""The algorithm suites: new messages are written with the committing suite without the SDK's
per-message ECDSA signature; decryption reads exactly the two suites vo2dr has ever written
(old signing messages keep decrypting) and refuses any other, in words, before any key is
asked for; and the signature never told our messages from a data-key holder's (the manifest's
pinned digests do that, see tests/integration/recovery/test_suites.py)."""

from __future__ import annotations

import hashlib

import pytest
from vo2dr import crypto
from vo2dr.exceptions import EncryptionError, IntegrityError
from vo2dr.snapshots.content import checked_plaintext, content_context

from tests import forgery

CONTEXT = {"environment": "staging", "data_class": "full", "backup_id": "b1"}
NEW, OLD = crypto.ALGORITHM_NAME, crypto.SIGNING_ALGORITHM_NAME


@pytest.fixture(scope="module")
def keys(session_recovery_keys):
    return session_recovery_keys


def encrypt(public: bytes, data: bytes, context=CONTEXT, **kw) -> tuple[bytes, crypto.Encryptor]:
    enc = crypto.Encryptor(kms_key_id="", recovery_public_key_pem=public, context=context, **kw)
    return b"".join(enc.stream([data], **({"max_plaintext": 4 * len(data) + 4096}
                                         if "cache" in kw else {}))), enc


def decrypt(private: bytes, body: bytes, **kw) -> bytes:
    return b"".join(crypto.decrypt_stream([body], recovery_private_key_pem=private, **kw))


def test_new_messages_use_the_committing_suite_without_a_signature(keys):
    private, public = keys
    assert NEW == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    assert crypto.READABLE_ALGORITHMS == (NEW, OLD)
    body, enc = encrypt(public, b"x" * 3_000_000)
    assert crypto.message_algorithm(body[:4]) == NEW and enc.info.algorithm == NEW
    header = forgery.header_of(body, private)
    assert header.algorithm.name == NEW and header.algorithm.is_committing()
    assert "aws-crypto-public-key" not in header.encryption_context  # no signing key
    assert decrypt(private, body, expected_context=CONTEXT, expected_algorithm=NEW) == \
        b"x" * 3_000_000


def test_an_old_signing_suite_message_still_decrypts(keys, monkeypatch):
    private, public = keys
    monkeypatch.setattr(crypto, "ALGORITHM_NAME", OLD)  # as every backup before this change
    body, enc = encrypt(public, b"old backup" * 1000)
    monkeypatch.undo()
    assert crypto.message_algorithm(body[:4]) == OLD and enc.info.algorithm == OLD
    assert "aws-crypto-public-key" in forgery.header_of(body, private).encryption_context
    assert decrypt(private, body, expected_algorithm=OLD) == b"old backup" * 1000
    assert b"".join(crypto.Decryptor(recovery_private_key_pem=private).stream([body])) == \
        b"old backup" * 1000
    # the signature is still checked on such a message: a flipped byte of it is refused
    bad = bytearray(body)
    bad[-10] ^= 1
    with pytest.raises(EncryptionError, match="decryption failed"):
        decrypt(private, bytes(bad))


def test_the_suite_must_be_the_one_the_signed_manifest_records(keys):
    private, public = keys
    body, _ = encrypt(public, b"abc")
    with pytest.raises(EncryptionError, match=f"not the one its signed manifest records \\({OLD}"):
        decrypt(private, body, expected_algorithm=OLD)


@pytest.mark.parametrize("suite", [
    "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",  # the SDK's default before commitment
    "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
    "AES_256_GCM_IV12_TAG16",  # no key derivation at all (format 1)
])
def test_a_message_of_any_other_suite_is_refused_before_a_key_is_asked_for(keys, suite):
    private, public = keys
    body = forgery.message_with_suite(public, b"not ours", CONTEXT, suite)
    assert crypto.message_algorithm(body[:4]) == suite
    expected = f"encrypted with the suite {suite}, which vo2dr never writes"
    with pytest.raises(EncryptionError, match=expected):
        decrypt(private, body)
    with pytest.raises(EncryptionError, match=expected):
        b"".join(crypto.Decryptor(recovery_private_key_pem=private).stream([body]))
    # refused before the key: a KMS key nobody can reach is never called
    with pytest.raises(EncryptionError, match=expected):
        b"".join(crypto.decrypt_stream(
            [body], kms_key_id="arn:aws:kms:us-east-1:111111111111:key/unreachable"))


def test_an_unknown_suite_id_or_not_a_message_is_refused_in_words(keys):
    private, public = keys
    body, _ = encrypt(public, b"abc")
    with pytest.raises(EncryptionError, match="unknown algorithm suite 0x1234: refused"):
        decrypt(private, body[:1] + b"\x12\x34" + body[3:])
    with pytest.raises(EncryptionError, match="not an AWS Encryption SDK message"):
        decrypt(private, b"PGDMP" + body)
    with pytest.raises(EncryptionError, match="not an AWS Encryption SDK message"):
        decrypt(private, b"")


@pytest.mark.parametrize("suite", [NEW, OLD])
def test_a_data_key_holder_forges_a_valid_message_only_the_pinned_digests_refuse(
        keys, monkeypatch, suite):
    """Why dropping the signature loses nothing: under either suite, whoever could decrypt a
    message writes another one, same wrapped keys, context and size, that the SDK takes as
    authentic (signing suite included: the forger signs with a key of their own). A content
    object's reader (``checked_plaintext``, the one check every snapshot reader uses) refuses
    it by the index's stored SHA-256."""
    private, public = keys
    context = content_context("staging", "assets")
    monkeypatch.setattr(crypto, "ALGORITHM_NAME", suite)
    plain = b"an athlete's FIT file " * 5000
    body, _ = encrypt(public, forgery.padded_zstd(plain, 4096), context=context)
    monkeypatch.undo()
    evil = b"EVIL" * 100
    forged = forgery.same_size_forgery(body, private, evil)
    assert forged != body and len(forged) == len(body)
    h, f = forgery.header_of(body, private), forgery.header_of(forged, private)
    assert crypto.header_data_keys(h) == crypto.header_data_keys(f)
    assert f.algorithm.name == suite
    # the SDK accepts it with every check we give it (context, wrapped keys, suite) ...
    assert forgery.decrypt_compressed(forged, private).startswith(
        b"\x28\xb5\x2f\xfd")  # a zstd frame
    assert decrypt(private, forged, expected_context=context,
                   expected_data_keys=crypto.header_data_keys(h), expected_algorithm=suite)
    # ... the pinned digests do not
    dec = crypto.Decryptor(recovery_private_key_pem=private)
    with pytest.raises(IntegrityError, match="the index says"):
        b"".join(checked_plaintext(
            [forged], lambda chunks, ctx: dec.stream(chunks, expected_context=ctx),
            environment="staging", source="assets", size=len(plain),
            sha256=hashlib.sha256(plain).hexdigest(), stored_size=len(body),
            stored_sha256=hashlib.sha256(body).hexdigest(), what="content c1"))
    assert b"".join(checked_plaintext(
        [body], lambda chunks, ctx: dec.stream(chunks, expected_context=ctx),
        environment="staging", source="assets", size=len(plain),
        sha256=hashlib.sha256(plain).hexdigest(), stored_size=len(body),
        stored_sha256=hashlib.sha256(body).hexdigest(), what="content c1")) == plain


def test_peek_leaves_the_bytes_to_be_read():
    reader = crypto.ChunkReader(iter([b"ab", b"cdef", b"g"]))
    assert reader.peek(4) == b"abcd" and reader.peek(2) == b"ab"
    assert reader.read(3) == b"abc" and reader.peek(10) == b"defg"
    assert reader.read(-1) == b"defg" and reader.peek(1) == b""
