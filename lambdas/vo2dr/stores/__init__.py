"""Backup stores: one interface (:class:`vo2dr.stores.base.BackupStore`), one implementation
per cloud. ``open_store(name, settings)`` picks one by name; ``open_stores(settings)`` opens
every enabled one, primary first.

The cloud SDKs are imported only when their store is opened, so a job with one cloud enabled
does not pay for importing the other two. How GCS and Azure sign in (emulator, keyless
federation from AWS, or the default chains) is decided in :mod:`vo2dr.stores.credentials`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vo2dr.exceptions import ConfigError
from vo2dr.stores.base import BackupStore, ObjectInfo, PutResult

if TYPE_CHECKING:
    from vo2dr.settings import Settings

STORE_NAMES = ("s3", "gcs", "azure")

__all__ = ["STORE_NAMES", "BackupStore", "ObjectInfo", "PutResult", "open_store", "open_stores"]


def open_store(name: str, settings: Settings) -> BackupStore:
    """The store called ``name`` (s3, gcs or azure), configured from ``settings``.
    Raises :class:`ConfigError` naming the missing setting, or for an unknown name."""
    if name == "s3":
        settings.require("s3_bucket", "kms_key_id")
        from vo2dr.stores.s3 import S3Store

        return S3Store(settings.s3_bucket, settings.kms_key_id)
    if name == "gcs":
        settings.require("gcs_bucket")
        from vo2dr.stores.credentials import gcs_credentials
        from vo2dr.stores.gcs import GcsStore, Retention

        retention = Retention.from_settings(settings.gcs_retention_days,
                                            settings.gcs_retention_mode)
        return GcsStore(settings.gcs_bucket, retention=retention,
                        credentials=gcs_credentials(settings.gcs_credential_config))
    if name == "azure":
        settings.require("azure_container_url")
        from vo2dr.stores.azure_blob import AzureBlobStore
        from vo2dr.stores.credentials import azure_credential

        return AzureBlobStore(settings.azure_container_url, credential=azure_credential(
            settings.azure_tenant_id, settings.azure_client_id))
    raise ConfigError(f"unknown store {name!r}: use one of {', '.join(STORE_NAMES)}")


def open_stores(settings: Settings) -> list[BackupStore]:
    """Every enabled store (a bucket or container is configured), primary first."""
    return [open_store(name, settings) for name in settings.enabled_stores]
