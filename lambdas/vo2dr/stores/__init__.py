"""Backup stores: one interface (:class:`vo2dr.stores.base.BackupStore`), one implementation
per cloud, and one factory that every caller uses: :func:`open_stores` (or :func:`open_store`
for one store by name).

The factory takes an explicit :class:`Access`: ``READ`` (list, verify, restore, status, drill)
needs no write-side setting such as the KMS key or the retention lock; ``WRITE`` (backup)
requires them. Opening is strict (the first store that cannot be opened raises) or
``tolerant`` (status: a store that cannot be opened is reported with its reason, which the
status counts as a breach). Zero stores is always refused: there is nothing to back up to,
list or check.

SDK errors raised while a client is built (a malformed URL, no credentials found, no region)
become :class:`ConfigError` naming the setting. The cloud SDKs are imported only when their
store is opened, so a job with one cloud enabled does not pay for importing the other two. How
GCS and Azure sign in (emulator, keyless federation, or the default chains) is decided in
:mod:`vo2dr.stores.credentials`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from vo2dr.exceptions import ConfigError, Vo2drError, one_line
from vo2dr.stores.base import BackupStore, ObjectInfo, PutResult

if TYPE_CHECKING:
    from vo2dr.settings import Settings

STORE_NAMES = ("s3", "gcs", "azure")
NO_STORE = ("no store enabled: set VO2DR_S3_BUCKET, VO2DR_GCS_BUCKET and/or "
            "VO2DR_AZURE_CONTAINER_URL")

__all__ = ["NO_STORE", "STORE_NAMES", "Access", "BackupStore", "ObjectInfo", "PutResult",
           "StoreSet", "open_store", "open_stores"]


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class StoreSet(Mapping[str, BackupStore]):
    """The stores that opened, by name, primary first; ``errors`` holds the ones that did not
    (tolerant opening only), and ``names`` every store asked for, in order."""

    def __init__(self, stores: Mapping[str, BackupStore], errors: Mapping[str, str],
                 names: Iterable[str]) -> None:
        self._stores = dict(stores)
        self.errors = dict(errors)
        self.names = tuple(names)

    def __getitem__(self, name: str) -> BackupStore:
        return self._stores[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stores)

    def __len__(self) -> int:
        return len(self._stores)

    def __repr__(self) -> str:
        return f"StoreSet({list(self._stores)}, errors={list(self.errors)})"


def open_store(name: str, settings: Settings, access: Access) -> BackupStore:
    """The store called ``name`` (s3, gcs or azure), configured from ``settings`` for
    ``access``. Raises :class:`ConfigError` naming the missing or malformed setting."""
    if name not in STORE_NAMES:
        raise ConfigError(f"unknown store {name!r}: use one of {', '.join(STORE_NAMES)}")
    try:
        return _open(name, settings, Access(access))
    except _sdk_errors(name) as exc:
        # What building a client raises (no network happens here): a malformed URL, no
        # credentials or no region found. One line naming the setting, not a traceback.
        raise ConfigError(f"cannot open the {name} store: {type(exc).__name__}: "
                          f"{one_line(exc, 200)}; {_FIX[name]}") from exc


def open_stores(settings: Settings, access: Access, *, names: Iterable[str] | None = None,
                tolerant: bool = False) -> StoreSet:
    """The stores ``names`` (default: every enabled one), primary first. Strict: the first
    that cannot be opened raises. ``tolerant``: it is left out and its reason kept in
    ``errors``. No store at all raises :class:`ConfigError` either way."""
    wanted = list(settings.enabled_stores if names is None else names)
    if not wanted:
        raise ConfigError(NO_STORE)
    stores: dict[str, BackupStore] = {}
    errors: dict[str, str] = {}
    for name in wanted:
        try:
            stores[name] = open_store(name, settings, access)
        except Vo2drError as exc:
            if not tolerant:
                raise
            errors[name] = str(exc)
    from vo2dr import startup

    startup.resume()  # the SDKs are imported and their clients built: start-up ends here
    return StoreSet(stores, errors, wanted)


def _open(name: str, settings: Settings, access: Access) -> BackupStore:
    writing = access is Access.WRITE
    if name == "s3":
        settings.require("s3_bucket", *(("kms_key_id",) if writing else ()))
        from vo2dr.stores.s3 import S3Store

        return S3Store(settings.s3_bucket, settings.kms_key_id, read_only=not writing)
    if name == "gcs":
        settings.require("gcs_bucket")
        from vo2dr.startup import lean_google_import
        from vo2dr.stores.credentials import gcs_credentials

        with lean_google_import():  # without a metadata scan and gRPC (see there)
            from vo2dr.stores.gcs import GcsStore, Retention

        # The retention lock is set on uploads only.
        retention = Retention.from_settings(settings.gcs_retention_days,
                                            settings.gcs_retention_mode) if writing else None
        return GcsStore(settings.gcs_bucket, retention=retention,
                        credentials=gcs_credentials(settings.gcs_credential_config))
    settings.require("azure_container_url")
    from vo2dr.settings import check_container_url
    from vo2dr.stores.azure_blob import AzureBlobStore
    from vo2dr.stores.credentials import azure_credential

    check_container_url(settings.azure_container_url)
    return AzureBlobStore(settings.azure_container_url, credential=azure_credential(
        settings.azure_tenant_id, settings.azure_client_id,
        assertion=settings.azure_assertion or None))


_FIX = {
    "s3": "check VO2DR_S3_BUCKET and the AWS environment (AWS_REGION, credentials)",
    "gcs": "check VO2DR_GCS_BUCKET and VO2DR_GCS_CREDENTIAL_CONFIG (or Google Application "
           "Default Credentials)",
    "azure": "check VO2DR_AZURE_CONTAINER_URL (https://<account>.blob.core.windows.net/"
             "<container>) and VO2DR_AZURE_TENANT_ID / VO2DR_AZURE_CLIENT_ID",
}


def _sdk_errors(name: str) -> tuple[type[BaseException], ...]:
    """The errors the SDK of store ``name`` raises for bad configuration (imported only once
    the store is opened, as the SDKs are)."""
    if name == "s3":
        import botocore.exceptions

        return (ValueError, botocore.exceptions.BotoCoreError)
    if name == "gcs":
        import google.auth.exceptions

        return (ValueError, google.auth.exceptions.GoogleAuthError)
    import azure.core.exceptions

    return (ValueError, azure.core.exceptions.AzureError)
