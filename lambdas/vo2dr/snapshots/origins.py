"""Where a snapshot source's objects come from: one small read-only interface
(:class:`Origin`) over an S3 prefix, a GCS prefix or a local directory.

An origin lists its objects in key order (the order S3 and GCS list in: UTF-8 byte order,
which is code-point order) with the facts that identify a version: size, ETag, version id
(where the listing has one) and modification time. The snapshot compares those facts with the
previous snapshot's and downloads only what changed (:mod:`vo2dr.snapshots.take`).

:meth:`Origin.open` reads exactly the version that was listed: S3 with ``IfMatch`` on the
listed ETag (the response names the version id it served), GCS pinned to the listed
generation, a local file checked against its listed size and mtime. If the object changed in
between, :class:`OriginChanged` says so and the caller lists it again.

Every SDK error leaves as :class:`~vo2dr.exceptions.SourceError` (one line, ``from exc``).
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from vo2dr.exceptions import SourceError, one_line
from vo2dr.strategy_application import parse_origin

READ_SIZE = 1024 * 1024
LIST_PAGE = 1000


class OriginChanged(SourceError):
    """The object changed (or vanished) between the listing and the read."""


class OriginObjectGone(OriginChanged):
    """The object was deleted after it was listed."""


@dataclass(frozen=True)
class OriginObject:
    """One object as listed. ``key`` is relative to the origin's prefix; ``mtime`` is ISO
    8601 UTC; ``version`` is None where the listing gives none."""

    key: str
    size: int
    etag: str
    mtime: str
    version: str | None = None


@dataclass
class Opened:
    """The chunks of one object's read, and the version it turned out to be (S3 names it in
    the GetObject response, so an unversioned listing still records what was read)."""

    chunks: Iterator[bytes]
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Origin(Protocol):
    name: str
    url: str

    def list(self) -> Iterator[OriginObject]:
        """Every object under the origin, in strictly increasing key order, paging as it
        goes (memory flat whatever the count)."""
        ...

    def open(self, obj: OriginObject) -> Opened:
        """Stream exactly the listed version of ``obj``; :class:`OriginChanged` if it is not
        there any more as listed."""
        ...

    def stat(self, key: str) -> OriginObject | None:
        """The object's current facts (None when absent), after an :class:`OriginChanged`."""
        ...


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


# -- S3 ------------------------------------------------------------------------------------------

class S3Origin:
    def __init__(self, name: str, bucket: str, prefix: str, client: Any = None) -> None:
        if client is None:
            from vo2dr.stores.s3 import make_client

            client = make_client("s3")
        self.name, self.bucket, self.prefix, self._client = name, bucket, prefix, client
        self.url = f"s3://{bucket}/{prefix}"

    def _fail(self, exc: Exception, op: str, key: str = "") -> SourceError:
        import botocore.exceptions

        where = f"s3://{self.bucket}/{self.prefix}{key}"
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "412") or status == 412:
                return OriginChanged(f"{where} changed since it was listed")
            if code in ("NoSuchKey", "404", "NoSuchVersion"):
                return OriginObjectGone(f"{where} was deleted since it was listed")
            return SourceError(f"origin {self.name}: {op} {where} refused: {code}")
        return SourceError(f"origin {self.name}: {op} {where} failed: {one_line(exc, 300)}")

    def list(self) -> Iterator[OriginObject]:
        import botocore.exceptions

        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": LIST_PAGE})
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix):]
                    if not key or (key.endswith("/") and int(obj["Size"]) == 0):
                        continue  # a console "folder" marker, not an object
                    yield OriginObject(key=key, size=int(obj["Size"]),
                                       etag=str(obj.get("ETag", "")).strip('"'),
                                       mtime=iso(obj["LastModified"]))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, "ListObjectsV2") from exc

    def open(self, obj: OriginObject) -> Opened:
        import botocore.exceptions

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + obj.key}
        if obj.version:
            args["VersionId"] = obj.version
        elif obj.etag:
            args["IfMatch"] = f'"{obj.etag}"'
        try:
            resp = self._client.get_object(**args)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(exc, "GetObject", obj.key) from exc
        body = resp["Body"]
        if int(resp.get("ContentLength", -1)) != obj.size:
            body.close()
            raise OriginChanged(f"s3://{self.bucket}/{self.prefix}{obj.key} changed since it "
                                "was listed (size)")

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(READ_SIZE)
            except Exception as exc:  # urllib3/botocore errors mid-body
                raise self._fail(exc, "GetObject (reading body)", obj.key) from exc
            finally:
                body.close()

        version = resp.get("VersionId")
        return Opened(chunks(), version if version and version != "null" else None)

    def stat(self, key: str) -> OriginObject | None:
        import botocore.exceptions

        try:
            resp = self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._fail(exc, "HeadObject", key) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._fail(exc, "HeadObject", key) from exc
        return OriginObject(key=key, size=int(resp["ContentLength"]),
                            etag=str(resp.get("ETag", "")).strip('"'),
                            mtime=iso(resp["LastModified"]))


# -- GCS -----------------------------------------------------------------------------------------

class GcsOrigin:
    """A GCS prefix; ``version`` is the object's generation, so a read is pinned to it."""

    def __init__(self, name: str, bucket: str, prefix: str, client: Any = None) -> None:
        if client is None:
            from vo2dr.stores.gcs import make_client

            client = make_client()  # the job's default credentials (or the local emulator)
        self.name, self.prefix, self._client = name, prefix, client
        self._bucket = client.bucket(bucket)
        self.url = f"gs://{bucket}/{prefix}"

    def _fail(self, exc: Exception, op: str, key: str = "") -> SourceError:
        from google.api_core import exceptions as gexc

        where = f"{self.url}{key}"
        if isinstance(exc, gexc.NotFound):
            return OriginObjectGone(f"{where} was deleted since it was listed")
        if isinstance(exc, gexc.PreconditionFailed):
            return OriginChanged(f"{where} changed since it was listed")
        return SourceError(f"origin {self.name}: {op} {where} failed: {one_line(exc, 300)}")

    def _object(self, blob: Any) -> OriginObject:
        return OriginObject(key=blob.name[len(self.prefix):], size=int(blob.size or 0),
                            etag=str(blob.etag or blob.md5_hash or ""),
                            mtime=iso(blob.updated), version=str(blob.generation))

    def list(self) -> Iterator[OriginObject]:
        try:
            for blob in self._client.list_blobs(self._bucket, prefix=self.prefix,
                                                page_size=LIST_PAGE):
                if blob.name == self.prefix or (blob.name.endswith("/") and not blob.size):
                    continue
                yield self._object(blob)
        except Exception as exc:  # google-api-core / transport errors
            raise self._fail(exc, "list") from exc

    def open(self, obj: OriginObject) -> Opened:
        blob = self._bucket.blob(self.prefix + obj.key,
                                 generation=int(obj.version) if obj.version else None)

        def chunks() -> Iterator[bytes]:
            start = 0
            try:
                while start < obj.size:
                    end = min(start + READ_SIZE, obj.size) - 1
                    data = blob.download_as_bytes(start=start, end=end, checksum=None,
                                                  client=self._client)
                    if not data:
                        raise OriginChanged(f"{self.url}{obj.key} is shorter than listed")
                    start += len(data)
                    yield data
            except OriginChanged:
                raise
            except Exception as exc:
                raise self._fail(exc, "read", obj.key) from exc

        return Opened(chunks(), obj.version)

    def stat(self, key: str) -> OriginObject | None:
        try:
            blob = self._bucket.get_blob(self.prefix + key)
        except Exception as exc:
            raise self._fail(exc, "stat", key) from exc
        return None if blob is None else self._object(blob)


# -- local directory -----------------------------------------------------------------------------

class LocalOrigin:
    """A local directory (tests, the demo, a mounted volume). Regular files only; symlinks
    are not followed (a link out of the tree would back up what the origin does not hold).
    The ETag is a digest of the inode, size and nanosecond mtime, so a rewrite in place
    changes it."""

    def __init__(self, name: str, directory: str) -> None:
        self.name, self.root = name, Path(directory)
        self.url = f"file://{directory}/"

    def _facts(self, rel: str, st: os.stat_result) -> OriginObject:
        tag = hashlib.sha256(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
        when = datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)
        return OriginObject(key=rel, size=st.st_size, etag=tag[:32], mtime=iso(when))

    def list(self) -> Iterator[OriginObject]:
        if not self.root.is_dir():
            raise SourceError(f"origin {self.name}: {self.url} is not a directory")
        yield from self._walk(self.root, "")

    def _walk(self, directory: Path, rel: str) -> Iterator[OriginObject]:
        try:
            children = list(os.scandir(directory))
        except OSError as exc:
            raise SourceError(f"origin {self.name}: cannot list {directory}: "
                              f"{one_line(exc)}") from exc
        # Key order of the full relative paths: a directory sorts as its name plus "/", so
        # "a-b" comes before "a/x" just as it does in a bucket listing.
        children.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for child in children:
            path = f"{rel}{child.name}"
            if child.is_dir(follow_symlinks=False):
                yield from self._walk(Path(child.path), path + "/")
            elif child.is_file(follow_symlinks=False):
                yield self._facts(path, child.stat(follow_symlinks=False))

    def open(self, obj: OriginObject) -> Opened:
        path = self.root / obj.key
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator below
            st = os.fstat(f.fileno())
        except FileNotFoundError as exc:
            raise OriginObjectGone(f"{self.url}{obj.key} was deleted since it was listed") \
                from exc
        except OSError as exc:
            raise SourceError(f"origin {self.name}: cannot read {path}: {one_line(exc)}") \
                from exc
        if not stat_mod.S_ISREG(st.st_mode) or self._facts(obj.key, st) != obj:
            f.close()
            raise OriginChanged(f"{self.url}{obj.key} changed since it was listed")

        def chunks() -> Iterator[bytes]:
            with f:
                while data := f.read(READ_SIZE):
                    yield data

        return Opened(chunks(), None)

    def stat(self, key: str) -> OriginObject | None:
        try:
            st = os.stat(self.root / key, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return self._facts(key, st) if stat_mod.S_ISREG(st.st_mode) else None


OriginFactory = Callable[[str, str], Origin]


def open_origin(name: str, url: str, *, s3_client: Any = None, gcs_client: Any = None) -> Origin:
    """The origin ``name`` at ``url`` (validated as the strategy validates it)."""
    scheme, bucket, prefix = parse_origin(url, f"origin {name}")
    if scheme == "s3":
        return S3Origin(name, bucket, prefix, s3_client)
    if scheme == "gs":
        return GcsOrigin(name, bucket, prefix, gcs_client)
    return LocalOrigin(name, prefix)


def origin_order(names: Iterator[str] | list[str]) -> list[str]:
    """The order origins are snapshotted in, so ``<origin>/<key>`` entries stay in key order:
    by name plus "/" (``app/…`` sorts after ``app-2/…``)."""
    return sorted(names, key=lambda n: n + "/")
