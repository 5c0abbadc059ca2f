"""The write-once object layout and the retention tier of a backup.

``database/<environment>/<tier>/<data-class>/<UTC timestamp>-<backup id>.dump.enc`` holds the
body and ``….manifest.json`` beside it. Keys are never reused, so object lock holds, and
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
_KEY = re.compile(
    r"^database/(?P<environment>[a-z0-9-]+)/(?P<tier>intraday|daily|weekly|monthly|yearly)/"
    r"(?P<data_class>[a-z0-9_-]+)/(?P<timestamp>\d{8}T\d{6}Z)-(?P<backup_id>[0-9a-f]{12})"
    r"(?P<suffix>\.dump\.enc|\.manifest\.json)$"
)


# Azure locks blobs per container (see vo2dr.stores.azure_blob), so intraday blobs live in a
# container of their own beside the main one: ``<container>-intraday``.
INTRADAY_CONTAINER_SUFFIX = "-intraday"


def intraday_container(container: str) -> str:
    """The Azure container that holds the intraday tier next to ``container``."""
    return container + INTRADAY_CONTAINER_SUFFIX


def is_intraday_key(key: str) -> bool:
    """Whether ``key`` is under ``database/<environment>/intraday/``."""
    parts = key.split("/", 3)
    return len(parts) == 4 and parts[0] == "database" and parts[2] == INTRADAY


def may_hold_intraday(prefix: str) -> bool:
    """Whether some intraday key starts with ``prefix`` (a listing must look there too)."""
    parts = prefix.split("/")
    if len(parts) == 1:
        return "database".startswith(parts[0])
    if parts[0] != "database":
        return False
    if len(parts) == 2:
        return True
    return INTRADAY.startswith(parts[2]) if len(parts) == 3 else parts[2] == INTRADAY


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

    @property
    def stem(self) -> str:
        return (f"database/{self.environment}/{self.tier}/{self.data_class}/"
                f"{format_timestamp(self.timestamp)}-{self.backup_id}")

    @property
    def body_key(self) -> str:
        return self.stem + BODY_SUFFIX

    @property
    def manifest_key(self) -> str:
        return self.stem + MANIFEST_SUFFIX


def parse_key(key: str) -> tuple[BackupRef, str] | None:
    """``(ref, "body"|"manifest")`` for a key of the layout, or ``None`` for any other key."""
    m = _KEY.match(key)
    if not m:
        return None
    ref = BackupRef(m["environment"], m["tier"], m["data_class"],
                    parse_timestamp(m["timestamp"]), m["backup_id"])
    return ref, ("body" if m["suffix"] == BODY_SUFFIX else "manifest")


def environment_prefix(environment: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", environment or ""):
        raise ConfigError(f"VO2DR_ENVIRONMENT {environment!r} must be lower-case letters, "
                          "digits and dashes, e.g. staging or production")
    return f"database/{environment}/"


def class_prefixes(environment: str, data_class: str, year: int | None = None) -> list[str]:
    """One listing prefix per tier for a data class, narrowed to a year when given."""
    base = environment_prefix(environment)
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
