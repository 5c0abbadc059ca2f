"""Incremental, deduplicated snapshots of object stores (issue 17): the ``assets`` (the app's
uploads) and ``logs`` (the log drain's prefixes) sources.

A snapshot is one backup like every other: its body is the encrypted index (every object's
key, size, version/ETag, mtime, plaintext and stored SHA-256, content id;
:mod:`vo2dr.snapshots.index`), its manifest is written last and signed. The objects' content
lives beside the tiers in ``<root>content/<random id>`` (:mod:`vo2dr.snapshots.content`), one
encrypted object per source object version, uploaded once and referenced by every later
snapshot in which the object is unchanged (:mod:`vo2dr.snapshots.take`).
"""
