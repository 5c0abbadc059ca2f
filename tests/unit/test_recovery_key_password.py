"""A password-protected recovery key (issue 13, smaller defects): unlocked in memory with
``--recovery-key-password-file`` or a prompt on a terminal, refused with a one-line reason
otherwise."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from vo2dr import crypto
from vo2dr.exceptions import ConfigError
from vo2dr.recovery_key import read_recovery_key


@pytest.fixture(scope="module")
def keys():
    private_pem, public_pem = crypto.generate_recovery_key(3072)
    key = serialization.load_pem_private_key(private_pem, password=None)
    locked = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption("correct horse ✓".encode()))
    legacy = key.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.BestAvailableEncryption(b"legacy"))
    return private_pem, public_pem, locked, legacy


def test_an_unencrypted_key_is_read_as_is(keys, tmp_path):
    (tmp_path / "k.pem").write_bytes(keys[0])
    assert read_recovery_key(str(tmp_path / "k.pem"), prompt=None) == keys[0]
    assert read_recovery_key(None) is None


def test_the_password_file_unlocks_the_key(keys, tmp_path):
    _, public_pem, locked, legacy = keys
    (tmp_path / "locked.pem").write_bytes(locked)
    (tmp_path / "pw").write_text("correct horse ✓\n", encoding="utf-8")
    pem = read_recovery_key(str(tmp_path / "locked.pem"), str(tmp_path / "pw"), prompt=None)
    assert b"ENCRYPTED" not in pem
    assert crypto.recovery_key_id_from_private(pem) == crypto.recovery_key_id(public_pem)
    (tmp_path / "legacy.pem").write_bytes(legacy)
    (tmp_path / "pw2").write_text("legacy", encoding="utf-8")
    pem = read_recovery_key(str(tmp_path / "legacy.pem"), str(tmp_path / "pw2"), prompt=None)
    assert crypto.recovery_key_id_from_private(pem) == crypto.recovery_key_id(public_pem)


def test_a_prompt_on_a_terminal_unlocks_the_key(keys, tmp_path):
    (tmp_path / "locked.pem").write_bytes(keys[2])
    asked = []

    def prompt(question: str) -> str:
        asked.append(question)
        return "correct horse ✓"

    pem = read_recovery_key(str(tmp_path / "locked.pem"), prompt=prompt)
    assert asked and "locked.pem" in asked[0]
    assert crypto.recovery_key_id_from_private(pem) == crypto.recovery_key_id(keys[1])


def test_refusals_are_one_line(keys, tmp_path):
    (tmp_path / "locked.pem").write_bytes(keys[2])
    (tmp_path / "wrong").write_text("nope\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="password-protected: pass --recovery-key-password-file"):
        read_recovery_key(str(tmp_path / "locked.pem"), prompt=None)
    with pytest.raises(ConfigError, match="wrong password"):
        read_recovery_key(str(tmp_path / "locked.pem"), str(tmp_path / "wrong"), prompt=None)
    with pytest.raises(ConfigError, match="needs --recovery-key"):
        read_recovery_key(None, str(tmp_path / "wrong"))
    (tmp_path / "empty").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        read_recovery_key(str(tmp_path / "locked.pem"), str(tmp_path / "empty"), prompt=None)
