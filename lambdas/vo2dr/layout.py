"""The write-once object layout and the retention tier of a backup.

``database/<environment>/<tier>/<data-class>/<UTC timestamp>-<backup id>.dump.enc`` holds the
body and ``….manifest.json`` beside it. The application sources (:mod:`vo2dr.sources`) follow
the same pattern under their own prefix: ``application/<environment>/code/….bundle.enc`` and
``application/<environment>/config/….tar.enc``, with the same tiers. The snapshot sources
(:mod:`vo2dr.snapshots`) too: ``application/<environment>/assets/<tier>/…`` and
``logs/<environment>/<tier>/…`` hold each snapshot's index (``….index.enc``) and manifest,
and their content pool ``<root>content/<32 hex>`` beside the tiers holds one encrypted object
per source object version, named by a random id (a name confirms nothing about a file);
``<root>prune/`` holds the pruner's plans. Keys are never reused, so object lock holds, and
"latest" is found by listing, never by a mutable pointer.

Tiers: the first complete backup of a data class in a UTC day is one of the GFS tiers
(``daily``, ``weekly``, ``monthly``, ``yearly``); every later one that day is ``intraday``,
kept (and locked) only for ``retention.intradayHours``. Without that tier, a 15-minute RPO
would keep 96 backups a day for the whole daily retention.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from vo2dr.exceptions import ConfigError

INTRADAY = "intraday"
GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
TIERS = (INTRADAY, *GFS_TIERS)
BODY_SUFFIX = ".dump.enc"
MANIFEST_SUFFIX = ".manifest.json"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DATABASE = "database"
# source kind -> (key prefix before the tier, with {environment}; the body's suffix)
SOURCE_LAYOUT = {
    DATABASE: ("database/{environment}/", BODY_SUFFIX),
    "code": ("application/{environment}/code/", ".bundle.enc"),
    "config": ("application/{environment}/config/", ".tar.enc"),
    "assets": ("application/{environment}/assets/", ".index.enc"),
    "logs": ("logs/{environment}/", ".index.enc"),
}
SOURCE_KINDS = tuple(SOURCE_LAYOUT)
SNAPSHOT_KINDS = ("assets", "logs")
CONTENT_DIR = "content/"
PRUNE_DIR = "prune/"
_CONTENT_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(
    r"^(?:database/(?P<environment>[a-z0-9-]+)|application/(?P<app_environment>[a-z0-9-]+)/"
    r"(?P<kind>code|config|assets)|logs/(?P<logs_environment>[a-z0-9-]+))/"
    r"(?P<tier>intraday|daily|weekly|monthly|yearly)/"
    r"(?P<data_class>[a-z0-9_-]+)/(?P<timestamp>\d{8}T\d{6}Z)-(?P<backup_id>[0-9a-f]{12})"
    r"(?P<suffix>\.[a-z]+\.enc|\.manifest\.json)$"
)


# Azure locks blobs per container (see vo2dr.stores.azure_blob), so intraday blobs live in a
# container of their own beside the main one: ``<container>-intraday``.
INTRADAY_CONTAINER_SUFFIX = "-intraday"


def intraday_container(container: str) -> str:
    """The Azure container that holds the intraday tier next to ``container``."""
    return container + INTRADAY_CONTAINER_SUFFIX


_ROOTS = ("database", "application", "logs")


def _tier_index(root: str) -> int | None:
    """Where the tier sits in a key: ``database/<env>/<tier>/…``, ``logs/<env>/<tier>/…`` or
    ``application/<env>/<kind>/<tier>/…``."""
    return {"database": 2, "application": 3, "logs": 2}.get(root)


def is_intraday_key(key: str) -> bool:
    """Whether ``key`` is under ``database/<environment>/intraday/`` (or an application
    source's ``application/<environment>/<kind>/intraday/`` or ``logs/<environment>/intraday/``;
    never a content object: ``<root>content/`` is kept by references, not by tier)."""
    parts = key.split("/")
    i = _tier_index(parts[0])
    return i is not None and len(parts) > i + 1 and parts[i] == INTRADAY


def may_hold_intraday(prefix: str) -> bool:
    """Whether some intraday key starts with ``prefix`` (a listing must look there too)."""
    parts = prefix.split("/")
    if len(parts) == 1:
        return any(root.startswith(parts[0]) for root in _ROOTS)
    i = _tier_index(parts[0])
    if i is None:
        return False
    if len(parts) <= i:
        return True
    return INTRADAY.startswith(parts[i]) if len(parts) == i + 1 else parts[i] == INTRADAY


def new_backup_id() -> str:
    return secrets.token_hex(6)


def format_timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackupRef:
    """Where one backup lives; the same in every store."""

    environment: str
    tier: str
    data_class: str
    timestamp: datetime
    backup_id: str
    source: str = DATABASE  # a key of SOURCE_LAYOUT

    @property
    def stem(self) -> str:
        return (f"{environment_prefix(self.environment, self.source)}{self.tier}/"
                f"{self.data_class}/{format_timestamp(self.timestamp)}-{self.backup_id}")

    @property
    def body_key(self) -> str:
        return self.stem + SOURCE_LAYOUT[self.source][1]

    @property
    def manifest_key(self) -> str:
        return self.stem + MANIFEST_SUFFIX


def parse_key(key: str) -> tuple[BackupRef, str] | None:
    """``(ref, "body"|"manifest")`` for a key of the layout, or ``None`` for any other key."""
    m = _KEY.match(key)
    if not m:
        return None
    source = m["kind"] or ("logs" if m["logs_environment"] else DATABASE)
    suffix = m["suffix"]
    if suffix != MANIFEST_SUFFIX and suffix != SOURCE_LAYOUT[source][1]:
        return None  # another source's body suffix: not a key of the layout
    ref = BackupRef(m["environment"] or m["app_environment"] or m["logs_environment"],
                    m["tier"], m["data_class"],
                    parse_timestamp(m["timestamp"]), m["backup_id"], source)
    return ref, ("manifest" if suffix == MANIFEST_SUFFIX else "body")


def environment_prefix(environment: str, source: str = DATABASE) -> str:
    """The key prefix of one source's backups in an environment (``database/<env>/``)."""
    if not re.fullmatch(r"[a-z0-9-]+", environment or ""):
        raise ConfigError(f"VO2DR_ENVIRONMENT {environment!r} must be lower-case letters, "
                          "digits and dashes, e.g. staging or production")
    if source not in SOURCE_LAYOUT:
        raise ConfigError(f"unknown source {source!r}: use one of {', '.join(SOURCE_KINDS)}")
    return SOURCE_LAYOUT[source][0].format(environment=environment)


def content_prefix(environment: str, source: str) -> str:
    """Where a snapshot source's content objects live: ``<root>content/``."""
    _require_snapshot(source)
    return environment_prefix(environment, source) + CONTENT_DIR


def content_key(environment: str, source: str, content_id: str) -> str:
    """The key of one content object (``content_id``: 32 lower-case hex, random)."""
    if not _CONTENT_ID.match(content_id or ""):
        raise ValueError(f"content id {content_id!r} is not 32 lower-case hex digits")
    return content_prefix(environment, source) + content_id


def content_id_of(environment: str, source: str, key: str) -> str | None:
    """The content id of ``key`` when it is a content object of ``source``, else ``None``."""
    prefix = content_prefix(environment, source)
    rest = key[len(prefix):] if key.startswith(prefix) else ""
    return rest if _CONTENT_ID.match(rest) else None


def new_content_id() -> str:
    """A fresh content id: random, never derived from the content, so a content object's name
    confirms nothing about a file (no keyed hash and no key to manage either)."""
    return secrets.token_hex(16)


def prune_prefix(environment: str, source: str) -> str:
    """Where the pruner writes its plans: ``<root>prune/``."""
    _require_snapshot(source)
    return environment_prefix(environment, source) + PRUNE_DIR


def _require_snapshot(source: str) -> None:
    if source not in SNAPSHOT_KINDS:
        raise ConfigError(f"{source!r} is not a snapshot source: use {' or '.join(SNAPSHOT_KINDS)}")


def class_prefixes(environment: str, data_class: str, year: int | None = None,
                   source: str = DATABASE) -> list[str]:
    """One listing prefix per tier for a data class, narrowed to a year when given."""
    base = environment_prefix(environment, source)
    year_part = f"{year:04d}" if year is not None else ""
    return [f"{base}{tier}/{data_class}/{year_part}" for tier in TIERS]


def choose_tier(now: datetime, existing: Iterable[datetime]) -> str:
    """Tier of a backup taken at ``now``, given the times of the data class's complete
    backups so far. A backup after another one the same UTC day is intraday. Otherwise GFS:
    the first of a year is yearly, of a month monthly, of an ISO week weekly; any other is
    daily. Lifecycle rules per tier prefix then expire it on time.

    Only earlier backups count (clock skew and backfills never demote one already taken), and
    only complete ones are passed in: a failed first attempt leaves the next one daily."""
    now = now.astimezone(UTC)
    earlier = [t.astimezone(UTC) for t in existing if t.astimezone(UTC) < now]
    if any(t.date() == now.date() for t in earlier):
        return INTRADAY
    if not any(t.year == now.year for t in earlier):
        return "yearly"
    if not any((t.year, t.month) == (now.year, now.month) for t in earlier):
        return "monthly"
    if not any(t.isocalendar()[:2] == now.isocalendar()[:2] for t in earlier):
        return "weekly"
    return "daily"
