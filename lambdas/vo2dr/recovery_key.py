"""The offline recovery private key given on the command line (``--recovery-key PATH``)."""

from __future__ import annotations

from pathlib import Path

from vo2dr.exceptions import ConfigError


def read_recovery_key(path: str | None) -> bytes | None:
    """The PEM bytes of the recovery private key at ``path`` (``None`` without a path)."""
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --recovery-key {path}: {exc}") from exc
