"""The project's own exceptions. SDK and subprocess errors are translated into these at the
boundary (with ``raise ... from exc``) so callers never handle a botocore, google or azure error."""


def one_line(error: BaseException | str, limit: int | None = None) -> str:
    """The first line of an error's message (its type's name if it has none), for the one-line
    messages users see; ``limit`` caps its length."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else (type(error).__name__ if isinstance(error, BaseException)
                                   else "")
    return text[:limit] if limit is not None else text


class Vo2drError(Exception):
    """Base of every error this package raises on purpose. ``str(err)`` is a one-line cause."""


class ConfigError(Vo2drError):
    """A setting or the strategy is missing or invalid. The message names the key and the fix."""


class StoreError(Vo2drError):
    """A backup store failed. ``store`` names it (s3, gcs, azure), ``key`` the object if any."""

    def __init__(self, message: str, *, store: str = "", key: str = "") -> None:
        super().__init__(message)
        self.store = store
        self.key = key


class ObjectNotFound(StoreError):
    """The object does not exist in the store."""


class AccessDenied(StoreError):
    """The store or key refused the credentials (including a denied KMS key)."""


class TransientStoreError(StoreError):
    """A failure worth retrying: timeouts, throttling, 5xx, dropped connections."""


class ObjectExists(StoreError):
    """A write-once key already exists; backups never overwrite."""


class IntegrityError(Vo2drError):
    """Bytes do not match what the manifest or the store says they should be."""


class EncryptionError(Vo2drError):
    """Encrypting or decrypting failed (no usable key, or the ciphertext is not authentic)."""


class DumpError(Vo2drError):
    """pg_dump (or the database connection behind it) failed."""


class SpaceError(Vo2drError):
    """The local volume for the spool file has not got room for the dump."""


class SourceError(Vo2drError):
    """An application source (the repository, the config files, the app's secrets) could not
    be read at backup time, or its backup could not be restored."""


class RestoreError(Vo2drError):
    """A restore was refused or failed; existing data is left as it was."""
