"""Backup stores: one interface (:class:`vo2dr.stores.base.BackupStore`), one implementation
per cloud. ``open_store(name, settings)`` picks one by name."""
