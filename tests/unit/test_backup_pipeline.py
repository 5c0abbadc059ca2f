"""The fan-out pipeline and the envelope encryption, without servers: destinations are small
in-memory stores, KMS is moto in-process. The real stores and servers are exercised by
tests/integration/backup/."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

import boto3
import pytest
import zstandard
from moto import mock_aws
from vo2dr import crypto, pipeline
from vo2dr.exceptions import DumpError, EncryptionError, StoreError
from vo2dr.pipeline import PipelineAborted, run_pipeline
from vo2dr.stores.base import PutResult
from vo2dr.stores.null import NullStore


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    """256 KiB zstd pieces instead of the production 1 MiB, so a few MiB of test data make
    many chunks (detaching after N chunks, queues filling up)."""
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 256 * 1024)


class MemStore(NullStore):
    """Keeps the bytes; optionally fails after ``fail_after`` chunks or sleeps per chunk."""

    def __init__(self, name, *, fail_after=None, delay=0.0, block=None):
        super().__init__(name)
        self.data, self.fail_after, self.delay, self.block = {}, fail_after, delay, block
        self.aborted_with = None

    def put_stream(self, key, chunks, *, metadata=None, lock=None):
        buf = bytearray()
        try:
            for i, chunk in enumerate(chunks):
                if self.fail_after is not None and i >= self.fail_after:
                    raise StoreError(f"{self.name}: connection reset", store=self.name)
                if self.block is not None:
                    self.block.wait()
                time.sleep(self.delay)
                buf += chunk
        except PipelineAborted as exc:
            self.aborted_with = exc
            raise
        self.data[key] = bytes(buf)
        return self._record(key, len(buf), hashlib.sha256(buf).hexdigest())


def identity(chunks):
    yield from chunks


def source(n=40, size=256 * 1024, fail_at=None):
    """Deterministic, half-compressible chunks (the same for every call)."""
    rnd = random.Random(42)
    for i in range(n):
        if fail_at is not None and i == fail_at:
            raise DumpError("pg_dump failed (exit 1): connection to server lost")
        yield rnd.randbytes(size // 2) + bytes([i]) * (size // 2)


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def test_every_destination_gets_the_same_verified_bytes():
    stores = {n: MemStore(n) for n in ("a", "b", "c")}
    plain = b"".join(source())
    result = run_pipeline(source(), encrypt=identity, stores=stores, key="k")
    assert result.all_verified
    assert result.plaintext_sha256 == hashlib.sha256(plain).hexdigest()
    assert result.plaintext_bytes == len(plain)
    for s in stores.values():
        assert hashlib.sha256(s.data["k"]).hexdigest() == result.ciphertext_sha256
        assert unzstd(s.data["k"]) == plain


def test_a_failing_destination_is_detached_and_the_others_complete():
    stores = {"ok1": MemStore("ok1"), "bad": MemStore("bad", fail_after=3),
              "ok2": MemStore("ok2")}
    result = run_pipeline(source(), encrypt=identity, stores=stores, key="k")
    assert result.destinations["bad"].status == "failed"
    assert result.destinations["bad"].error == "bad: connection reset"
    assert [result.destinations[n].status for n in ("ok1", "ok2")] == ["verified"] * 2
    assert "k" not in stores["bad"].data


def test_a_destination_is_checked_against_the_pipelines_size_and_sha256():
    """Stores leave the SHA-256 of a streamed body to the pipeline (PutResult): one that
    reports none is verified by its size and recorded with the pipeline's SHA-256; one that
    kept fewer bytes, or reports another SHA-256, is failed."""

    class Reporting(MemStore):
        def __init__(self, name, lie):
            super().__init__(name)
            self.lie = lie

        def put_stream(self, key, chunks, *, metadata=None, lock=None):
            r = super().put_stream(key, chunks)
            size, sha = {"none": (r.size, ""), "short": (r.size - 1, ""),
                         "other": (r.size, "0" * 64)}[self.lie]
            return PutResult(key=key, size=size, sha256=sha, checksum="test:x")

    stores = {lie: Reporting(lie, lie) for lie in ("none", "short", "other")}
    result = run_pipeline(source(), encrypt=identity, stores=stores, key="k")
    ok, short, other = (result.destinations[n] for n in ("none", "short", "other"))
    assert ok.status == "verified" and ok.sha256 == result.ciphertext_sha256
    assert hashlib.sha256(stores["none"].data["k"]).hexdigest() == ok.sha256
    assert short.status == "failed" and "IntegrityError" in short.error
    assert f"holds {result.ciphertext_bytes - 1} bytes" in short.error
    assert other.status == "failed" and "sha256 00000000" in other.error


def test_a_stalled_destination_is_detached_after_the_stall_timeout():
    gate = threading.Event()  # never set: this store hangs on its first chunk
    stores = {"ok": MemStore("ok"), "stuck": MemStore("stuck", block=gate)}
    t0 = time.monotonic()
    result = run_pipeline(source(n=30), encrypt=identity, stores=stores, key="k",
                          queue_chunks=2, stall_timeout=1.0)
    gate.set()
    assert time.monotonic() - t0 < 10
    assert result.destinations["ok"].status == "verified"
    assert result.destinations["stuck"].status == "failed"
    assert "stalled" in result.destinations["stuck"].error


def test_a_source_failure_aborts_every_upload_and_propagates():
    stores = {n: MemStore(n) for n in ("a", "b")}
    with pytest.raises(DumpError, match="connection to server lost"):
        run_pipeline(source(fail_at=20), encrypt=identity, stores=stores, key="k")
    for s in stores.values():
        assert s.data == {}
        assert isinstance(s.aborted_with, PipelineAborted)


def test_an_encryption_failure_before_the_first_chunk_starts_no_upload():
    def refuse(chunks):
        raise EncryptionError("encryption failed: GenerateDataKey refused: AccessDenied")
        yield b""  # pragma: no cover

    started = []

    class Watching(MemStore):
        def put_stream(self, key, chunks, *, metadata=None, lock=None):
            started.append(self.name)
            return super().put_stream(key, chunks, metadata=metadata)

    with pytest.raises(EncryptionError, match="AccessDenied"):
        run_pipeline(source(), encrypt=refuse, stores={"a": Watching("a")}, key="k")
    assert started == []


def test_memory_stays_bounded_by_the_queues():
    """A destination slower than the source never lets chunks pile up beyond its queue."""
    peak = [0]

    class Counting(MemStore):
        def put_stream(self, key, chunks, *, metadata=None, lock=None):
            for i, _ in enumerate(chunks):
                if i == 0:
                    # Hold the first chunk until the producer has filled the queue: on a busy
                    # machine zstd can be slower than this destination, and a queue that never
                    # fills proves nothing. Then watch a while: an unbounded queue keeps growing.
                    deadline = time.monotonic() + 60
                    while feeder_queue_sizes() < 3 and time.monotonic() < deadline:
                        time.sleep(0.005)
                    watch = time.monotonic() + 0.3
                    while time.monotonic() < watch:
                        peak[0] = max(peak[0], feeder_queue_sizes())
                        time.sleep(0.005)
                peak[0] = max(peak[0], feeder_queue_sizes())
                time.sleep(0.002)
            return self._record(key, 0, "")

    feeders = []
    real = pipeline._Feeder

    def spy(*args, **kwargs):
        f = real(*args, **kwargs)
        feeders.append(f)
        return f

    def feeder_queue_sizes():
        return sum(f.queue.qsize() for f in feeders)

    pipeline_feeder = pipeline._Feeder
    pipeline._Feeder = spy
    try:
        run_pipeline(source(n=60), encrypt=identity, stores={"s": Counting("s")}, key="k",
                     queue_chunks=3)
    finally:
        pipeline._Feeder = pipeline_feeder
    assert peak[0] == 3  # the queue filled, and never beyond its bound


@pytest.fixture
def kms_arn(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("kms").create_key()["KeyMetadata"]["Arn"]


@pytest.fixture(scope="module")
def keypair():
    return crypto.generate_recovery_key(3072)


def test_envelope_round_trip_with_either_key(kms_arn, keypair):
    private, public = keypair
    context = {"environment": "staging", "data_class": "full", "backup_id": "0123456789ab"}
    enc = crypto.Encryptor(kms_key_id=kms_arn, recovery_public_key_pem=public, context=context)
    data = os.urandom(3 * crypto.FRAME_LENGTH + 12345)
    ct = b"".join(enc.stream([data[i:i + 70000] for i in range(0, len(data), 70000)]))
    assert enc.info.kms_key_arn == kms_arn
    assert enc.info.recovery_key_id == crypto.recovery_key_id(public)
    assert enc.info.recovery_key_id == crypto.recovery_key_id_from_private(private)
    assert b"".join(crypto.decrypt_stream([ct], kms_key_id=kms_arn)) == data
    pieces = [ct[i:i + 999] for i in range(0, len(ct), 999)]
    assert b"".join(crypto.decrypt_stream(pieces, recovery_private_key_pem=private,
                                          expected_context=context)) == data


def test_recovery_key_id_is_the_sha256_of_the_der_public_key(keypair):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(keypair[1])
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    assert crypto.recovery_key_id(keypair[1]) == hashlib.sha256(der).hexdigest()


def test_tampering_truncation_and_wrong_context_are_refused(kms_arn, keypair):
    private, public = keypair
    enc = crypto.Encryptor(kms_key_id=kms_arn, recovery_public_key_pem=public,
                           context={"backup_id": "aaa"})
    ct = b"".join(enc.stream([os.urandom(2 * crypto.FRAME_LENGTH)]))
    flipped = bytearray(ct)
    flipped[len(ct) // 2] ^= 1
    cases = {"altered": bytes(flipped), "truncated at a frame": ct[: len(ct) // 2],
             "missing footer": ct[:-20]}
    for why, bad in cases.items():
        with pytest.raises(EncryptionError) as err:
            b"".join(crypto.decrypt_stream([bad], recovery_private_key_pem=private))
        assert "\n" not in str(err.value), why
    with pytest.raises(EncryptionError, match="encryption context does not match"):
        b"".join(crypto.decrypt_stream([ct], recovery_private_key_pem=private,
                                       expected_context={"backup_id": "bbb"}))
    other_private, _ = crypto.generate_recovery_key(3072)
    with pytest.raises(EncryptionError):
        b"".join(crypto.decrypt_stream([ct], recovery_private_key_pem=other_private))


def test_weak_or_missing_keys_are_refused(keypair):
    _, weak = crypto.generate_recovery_key(2048)
    with pytest.raises(EncryptionError, match="RSA-2048"):
        crypto.recovery_key_id(weak)
    with pytest.raises(EncryptionError, match="no decryption key"):
        crypto.decrypt_stream([b""])
    with pytest.raises(EncryptionError, match="must be a key ARN"):
        crypto.decrypt_stream([b""], kms_key_id="alias/backups")


def test_without_a_kms_key_the_data_key_is_wrapped_for_the_recovery_key_only(kms_arn, keypair):
    """The GCP standby has no AWS: no KMS call, the manifest's kms_key_arn stays empty, and
    only the recovery private key opens the message."""
    private, public = keypair
    context = {"environment": "staging", "data_class": "critical", "backup_id": "0123456789ab"}
    enc = crypto.Encryptor(kms_key_id="", recovery_public_key_pem=public, context=context)
    assert enc.recovery_only
    data = os.urandom(crypto.FRAME_LENGTH + 777)
    ct = b"".join(enc.stream([data]))
    assert enc.info.kms_key_arn == ""
    assert enc.info.recovery_key_id == crypto.recovery_key_id(public)
    assert b"".join(crypto.decrypt_stream([ct], recovery_private_key_pem=private,
                                          expected_context=context)) == data
    # No data key wrapped by KMS in the message: a KMS key cannot open it.
    with pytest.raises(EncryptionError):
        b"".join(crypto.decrypt_stream([ct], kms_key_id=kms_arn))
    assert not crypto.Encryptor(kms_key_id=kms_arn, recovery_public_key_pem=public,
                                context=context).recovery_only
