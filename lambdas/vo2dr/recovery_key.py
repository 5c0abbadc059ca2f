"""The offline recovery private key given on the command line (``--recovery-key PATH``), and
its password when it is stored encrypted (``--recovery-key-password-file FILE``, or a prompt on
a terminal). The key is unlocked in memory only; the unlocked PEM is never written anywhere."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from vo2dr.exceptions import ConfigError

Prompt = Callable[[str], str]


def _terminal_prompt() -> Prompt | None:
    return getpass.getpass if sys.stdin.isatty() else None


def read_recovery_key(path: str | None, password_file: str | None = None, *,
                      prompt: Prompt | bool | None = True) -> bytes | None:
    """The PEM bytes of the recovery private key at ``path`` (``None`` without a path). A
    password-protected key is unlocked with the first line of ``password_file``, else by asking
    on the terminal (``prompt``: ``True`` for getpass when stdin is a TTY, a callable, or
    ``None``/``False`` never to ask), and returned unencrypted (PKCS#8) for this process only."""
    if not path:
        if password_file:
            raise ConfigError("--recovery-key-password-file needs --recovery-key PATH")
        return None
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --recovery-key {path}: {exc}") from exc
    if not _encrypted(pem):
        return pem
    password = _password(path, password_file, _terminal_prompt() if prompt is True
                         else (prompt or None))
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except ValueError as exc:
        raise ConfigError(f"cannot unlock --recovery-key {path}: wrong password (or the key "
                          "file is damaged)") from exc
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _encrypted(pem: bytes) -> bool:
    """Whether the PEM private key needs a password (PKCS#8 ENCRYPTED or a legacy
    Proc-Type: 4,ENCRYPTED header)."""
    try:
        serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        return True
    except ValueError:
        return False  # not a key we can read at all: the decryption reports it
    return False


def _password(path: str, password_file: str | None, prompt: Prompt | None) -> bytes:
    if password_file:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read --recovery-key-password-file {password_file}: "
                              f"{exc}") from exc
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"--recovery-key-password-file {password_file} is empty")
        return lines[0].encode("utf-8")
    if prompt is None:
        raise ConfigError(f"--recovery-key {path} is password-protected: pass "
                          "--recovery-key-password-file FILE, or run on a terminal to be asked")
    answer = prompt(f"Password for the recovery key {path}: ")
    if not answer:
        raise ConfigError("no password given for the recovery key")
    return answer.encode("utf-8")
