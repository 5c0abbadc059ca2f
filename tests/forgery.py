"""Messages an attacker can write, for the tests that prove every reader refuses them.

The strongest is a **same-key forgery**: whoever may decrypt one message (``kms:Decrypt`` on
the key, or the recovery private key) learns its data key, and can then write a new message of
any plaintext under the very same wrapped data keys, encryption context and suite, which the
Encryption SDK decrypts as authentic (every frame's tag and the key commitment hold). The SDK's
ECDSA suite does not stop it: the signing key is made for each message and its public half is
carried in the message itself, so the forger signs with a key of their own. Only the signed
manifest's pinned SHA-256 of the ciphertext (the index's, for a content object) tells it from
ours.

Everything here goes through the SDK's own materials interfaces; nothing is hand-rolled.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import zstandard

SKIPPABLE_MAGIC = 0x184D2A50  # a zstd skippable frame: every reader skips its content


def header_of(body: bytes, recovery_private_pem: bytes) -> Any:
    """The SDK's parsed header of ``body`` (its data keys unwrapped by the recovery key)."""
    from vo2dr import crypto

    dec = crypto._client().stream(mode="d", source=io.BytesIO(body),
                                  key_provider=crypto._recovery_decryption_key(
                                      recovery_private_pem, None))
    return dec.header


def same_key_forgery(body: bytes, recovery_private_pem: bytes, plaintext: bytes) -> bytes:
    """A message of ``plaintext`` under ``body``'s own wrapped data keys, context (less the
    signing public key, replaced by the forger's own on a signing suite) and suite."""
    from aws_encryption_sdk.materials_managers import (
        DecryptionMaterialsRequest,
        EncryptionMaterials,
    )
    from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
    from aws_encryption_sdk.materials_managers.default import DefaultCryptoMaterialsManager
    from aws_encryption_sdk.structures import DataKey
    from vo2dr import crypto

    provider = crypto._recovery_decryption_key(recovery_private_pem, None)
    header = header_of(body, recovery_private_pem)
    default = DefaultCryptoMaterialsManager(master_key_provider=provider)
    raw = default.decrypt_materials(DecryptionMaterialsRequest(
        algorithm=header.algorithm, encrypted_data_keys=set(header.encrypted_data_keys),
        encryption_context=dict(header.encryption_context))).data_key
    context = {k: v for k, v in header.encryption_context.items()
               if k != "aws-crypto-public-key"}
    signing_key = default._generate_signing_key_and_update_encryption_context(
        header.algorithm, context)
    edk = next(iter(header.encrypted_data_keys))

    class SameKeys(CryptoMaterialsManager):
        def get_encryption_materials(self, request):
            return EncryptionMaterials(
                algorithm=header.algorithm,
                data_encryption_key=DataKey(key_provider=raw.key_provider, data_key=raw.data_key,
                                            encrypted_data_key=edk.encrypted_data_key),
                encrypted_data_keys=set(header.encrypted_data_keys),
                encryption_context=context, signing_key=signing_key)

        def decrypt_materials(self, request):  # pragma: no cover - never asked
            raise NotImplementedError

    out, _ = crypto._client().encrypt(source=plaintext, materials_manager=SameKeys(),
                                      algorithm=header.algorithm,
                                      frame_length=header.frame_length)
    return out


def padded_zstd(plaintext: bytes, size: int) -> bytes:
    """``plaintext`` zstd-compressed, then padded to exactly ``size`` bytes with a skippable
    frame, so that a forged body has the size its manifest records."""
    frame = zstandard.ZstdCompressor(level=1).compress(plaintext)
    pad = size - len(frame) - 8
    if pad < 0:
        raise ValueError(f"{len(frame)} compressed bytes do not fit in {size}")
    return frame + struct.pack("<II", SKIPPABLE_MAGIC, pad) + b"\0" * pad


def decrypt_compressed(body: bytes, recovery_private_pem: bytes) -> bytes:
    from vo2dr import crypto

    return b"".join(crypto.decrypt_stream([body], recovery_private_key_pem=recovery_private_pem))


def same_size_forgery(body: bytes, recovery_private_pem: bytes, plaintext: bytes) -> bytes:
    """A same-key forgery of ``plaintext`` that is also exactly as long as ``body``: it passes
    the size check made before a download, the suite, context and data-key checks, and every
    frame's authentication; only the pinned digests can refuse it."""
    compressed = decrypt_compressed(body, recovery_private_pem)
    forged = same_key_forgery(body, recovery_private_pem,
                              padded_zstd(plaintext, len(compressed)))
    if len(forged) != len(body):
        raise AssertionError(f"forgery is {len(forged)} bytes, the body {len(body)}")
    return forged


def same_size(make: Callable[[bytes], bytes], plaintext: bytes, size: int,
              guess: int) -> bytes:
    """``make(padded zstd of plaintext)`` (an encryption of one frame or more), with the padding
    chosen so the message is exactly ``size`` bytes (``guess``: the compressed size to try
    first; the message's length grows byte for byte with it within a frame)."""
    first = make(padded_zstd(plaintext, guess))
    out = make(padded_zstd(plaintext, guess + size - len(first)))
    if len(out) != size:
        raise AssertionError(f"forgery is {len(out)} bytes, the body {size}")
    return out


def message_with_suite(recovery_public_pem: bytes, plaintext: bytes, context: dict[str, str],
                       algorithm_name: str) -> bytes:
    """A message to the (public) recovery key under any suite the SDK knows, committing or
    not, with its own client (ours refuses to write a non-committing one)."""
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
    from vo2dr import crypto

    algorithm = Algorithm[algorithm_name]
    policy = (CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT if algorithm.is_committing()
              else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy)
    key = crypto._recovery_master_key(crypto.recovery_key_id(recovery_public_pem),
                                      recovery_public_pem, private=False)
    out, _ = client.encrypt(source=plaintext, key_provider=key, algorithm=algorithm,
                            encryption_context=context, frame_length=crypto.FRAME_LENGTH)
    return out
