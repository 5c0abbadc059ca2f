"""Content encryption: the data-key cache (one KMS data key for many small content objects,
bounded), the content context, and the reader's checks against the index entry."""

from __future__ import annotations

import hashlib
import os

import pytest
from vo2dr import crypto
from vo2dr.crypto import DataKeyCache, Encryptor, compressed_bound
from vo2dr.exceptions import EncryptionError, IntegrityError
from vo2dr.snapshots.content import ContentWriter, content_context, content_plaintext
from vo2dr.snapshots.index import Entry

from tests.unit.recovery_memstore import MemoryStore

PRIVATE, PUBLIC = crypto.generate_recovery_key(3072)


def message(enc: Encryptor, data: bytes) -> tuple[bytes, list]:
    out = b"".join(enc.stream([data], max_plaintext=compressed_bound(len(data))))
    return out, list(enc.info.data_keys)


def test_a_cached_data_key_serves_at_most_max_messages():
    enc = Encryptor(kms_key_id="", recovery_public_key_pem=PUBLIC, context={"a": "b"},
                    cache=DataKeyCache(max_age_seconds=300, max_messages=3))
    msgs = [message(enc, os.urandom(100 + i)) for i in range(4)]
    keys = [k for _, k in msgs]
    assert keys[0] == keys[1] == keys[2]  # one wrapped data key, three messages
    assert keys[3] != keys[0]  # the fourth gets a new one
    assert len({m for m, _ in msgs}) == 4
    for (m, _), i in zip(msgs, range(4), strict=True):
        plain = b"".join(crypto.decrypt_stream([m], recovery_private_key_pem=PRIVATE,
                                               expected_context={"a": "b"}))
        assert len(plain) == 100 + i
    plain = Encryptor(kms_key_id="", recovery_public_key_pem=PUBLIC, context={"a": "b"})
    assert message(plain, b"x")[1] != message(plain, b"y")[1]  # no cache: a key each


def test_a_cached_key_needs_and_enforces_the_upper_bound():
    enc = Encryptor(kms_key_id="", recovery_public_key_pem=PUBLIC, context={"a": "b"},
                    cache=DataKeyCache(max_age_seconds=300, max_messages=3))
    with pytest.raises(EncryptionError, match="upper bound"):
        b"".join(enc.stream([b"abc"]))
    with pytest.raises(EncryptionError):
        b"".join(enc.stream([b"x" * 5000], max_plaintext=10))
    assert compressed_bound(0) > 0 and compressed_bound(10**9) > 10**9


def test_content_round_trip_and_every_check_of_the_reader():
    store = MemoryStore("s3")
    writer = ContentWriter(environment="staging", source="assets", kms_key_id="",
                           recovery_public_key_pem=PUBLIC)
    data = os.urandom(3 * 1024 * 1024 + 5)
    stored = writer.put(iter([data[i:i + 65536] for i in range(0, len(data), 65536)]),
                        len(data), {"s3": store})
    assert not stored.failed and stored.uploaded_to == ("s3",)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    key = next(iter(store.objects))
    blob = store.objects[key]
    assert key.endswith(stored.content_id) and len(blob) == stored.stored_size
    entry = Entry(key="uploads/x.bin", size=len(data), etag="e", version=None, mtime="t",
                  sha256=stored.sha256, content=stored.content_id,
                  stored_size=stored.stored_size, stored_sha256=stored.stored_sha256)
    keys = {"environment": "staging", "source": "assets", "recovery_private_key_pem": PRIVATE}
    assert b"".join(content_plaintext([blob], entry, **keys)) == data

    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    with pytest.raises((IntegrityError, EncryptionError)):
        b"".join(content_plaintext([bytes(flipped)], entry, **keys))
    with pytest.raises(IntegrityError, match="stored object"):
        b"".join(content_plaintext([blob + b"trailing"], entry, **keys))
    wrong = Entry(**{**entry.__dict__, "sha256": "0" * 64})
    with pytest.raises(IntegrityError, match="decrypts to"):
        b"".join(content_plaintext([blob], wrong, **keys))
    # Another source's content cannot stand in (its encryption context differs).
    with pytest.raises(EncryptionError, match="encryption context"):
        b"".join(content_plaintext([blob], entry, **{**keys, "source": "logs"}))
    assert content_context("staging", "assets")["vo2dr:purpose"] == "snapshot-content"
