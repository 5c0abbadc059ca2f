"""A deterministic, scalable generator of a realistic VO₂Max Training App database.

    python -m dev.seed --url postgresql://postgres@127.0.0.1:5432/vo2max --scale 10

The same ``--seed`` and ``--scale`` always give byte-identical table contents (checked by
``tests/unit/test_seed.py`` through :func:`checksum`). One unit of scale is about 10 MB on
disk (tables and indexes), so scale 10 is about 100 MB and scale 100 about 1 GB.

The schema holds every table the staging stack's data classes name (critical: users,
training_protocols, user_protocol_assignments, vo2max_calculations, session_metrics,
biomarker_measurements; important: app_config, audit_logs, analytics_events) plus one
non-critical table (system_logs) that only the full dump carries.

Design choices:
- Tables are created and filled by COPY in one transaction (``FREEZE``), and primary keys,
  foreign keys and indexes are added afterwards, as pg_restore does: that is several times
  faster than maintaining indexes and checking foreign keys row by row.
- ``session_metrics`` (per-sample heart rate, power, cadence, speed, VO₂, RER; about 75% of
  the bytes) is generated with numpy, vectorised per batch of users, and loaded in COPY's
  binary format built directly from a numpy structured array. Everything else is generated
  in Python with ``random.Random`` and loaded with ``Copy.write_row``.
- Every table has its own random stream derived from the seed, so adding a column to one
  table does not change the others.
- Logs and analytics (important class) carry ``user_id`` without a foreign key to ``users``
  (critical class): a restore of one data class alone must never fail on another class's
  missing table, and deleting a user must not be blocked by their history.
- All timestamps are relative to a fixed ``AS_OF`` instant, never to the clock.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import json
import random
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql

DEFAULT_SEED = 20250630
AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Calibrated on PostgreSQL 18: database size in MB (tables + indexes) per unit of scale.
MB_PER_SCALE = 10.0
USERS_PER_SCALE = 20
SAMPLE_INTERVAL_S = 15
SESSIONS_PER_USER = 11  # mean
USER_BATCH = 50  # users per generation batch (fixed: part of the deterministic sequence)

# Which data class each table belongs to (the staging stack names the first two groups).
TABLE_CLASSES = {
    "users": "critical",
    "training_protocols": "critical",
    "user_protocol_assignments": "critical",
    "vo2max_calculations": "critical",
    "session_metrics": "critical",
    "biomarker_measurements": "critical",
    "app_config": "important",
    "audit_logs": "important",
    "analytics_events": "important",
    "system_logs": "full",
}
TABLES = tuple(TABLE_CLASSES)

SCHEMA = """
CREATE TABLE users (
    id            bigint NOT NULL,
    email         text NOT NULL,
    display_name  text NOT NULL,
    birth_date    date NOT NULL,
    sex           char(1) NOT NULL CHECK (sex IN ('F', 'M', 'X')),
    height_cm     numeric(4,1) NOT NULL,
    weight_kg     numeric(4,1) NOT NULL,
    resting_hr    smallint NOT NULL CHECK (resting_hr BETWEEN 30 AND 110),
    max_hr        smallint NOT NULL CHECK (max_hr BETWEEN 120 AND 230),
    timezone      text NOT NULL,
    units         text NOT NULL DEFAULT 'metric',
    marketing_opt_in boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);
CREATE TABLE training_protocols (
    id                 integer NOT NULL,
    slug               text NOT NULL,
    name               text NOT NULL,
    sport              text NOT NULL,
    goal               text NOT NULL,
    description        text NOT NULL,
    weeks              smallint NOT NULL,
    sessions_per_week  smallint NOT NULL,
    intensity_zones    jsonb NOT NULL,
    is_public          boolean NOT NULL,
    created_at         timestamptz NOT NULL
);
CREATE TABLE user_protocol_assignments (
    id             bigint NOT NULL,
    user_id        bigint NOT NULL,
    protocol_id    integer NOT NULL,
    status         text NOT NULL CHECK (status IN ('active', 'completed', 'abandoned', 'paused')),
    started_on     date NOT NULL,
    ends_on        date NOT NULL,
    adherence_pct  numeric(5,2) NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE TABLE vo2max_calculations (
    id               bigint NOT NULL,
    user_id          bigint NOT NULL,
    session_id       bigint,
    method           text NOT NULL,
    vo2max_ml_kg_min numeric(5,2) NOT NULL,
    confidence       real NOT NULL,
    inputs           jsonb NOT NULL,
    calculated_at    timestamptz NOT NULL
);
CREATE TABLE session_metrics (
    id                bigint NOT NULL,
    session_id        bigint NOT NULL,
    user_id           bigint NOT NULL,
    assignment_id     bigint NOT NULL,
    recorded_at       timestamptz NOT NULL,
    elapsed_s         integer NOT NULL,
    heart_rate_bpm    smallint NOT NULL,
    power_watts       smallint NOT NULL,
    cadence_rpm       smallint NOT NULL,
    speed_kmh         real NOT NULL,
    vo2_ml_kg_min     real NOT NULL,
    rer               real NOT NULL
);
CREATE TABLE biomarker_measurements (
    id           bigint NOT NULL,
    user_id      bigint NOT NULL,
    kind         text NOT NULL,
    source       text NOT NULL,
    measured_at  timestamptz NOT NULL,
    payload      jsonb NOT NULL
);
CREATE TABLE app_config (
    key          text NOT NULL,
    value        jsonb NOT NULL,
    description  text NOT NULL,
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE TABLE audit_logs (
    id             bigint NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_user_id  bigint,
    actor_role     text NOT NULL,
    action         text NOT NULL,
    entity         text NOT NULL,
    entity_id      text NOT NULL,
    ip_address     inet NOT NULL,
    user_agent     text NOT NULL,
    details        jsonb NOT NULL
);
CREATE TABLE analytics_events (
    id           bigint NOT NULL,
    user_id      bigint NOT NULL,
    session_key  uuid NOT NULL,
    event_name   text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    platform     text NOT NULL,
    app_version  text NOT NULL,
    properties   jsonb NOT NULL
);
CREATE TABLE system_logs (
    id         bigint NOT NULL,
    logged_at  timestamptz NOT NULL,
    level      text NOT NULL,
    service    text NOT NULL,
    message    text NOT NULL
);
"""

# Added after the data is in: keys, foreign keys (within a data class only), indexes.
CONSTRAINTS = """
ALTER TABLE users ADD PRIMARY KEY (id);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE training_protocols ADD PRIMARY KEY (id);
ALTER TABLE training_protocols ADD CONSTRAINT training_protocols_slug_key UNIQUE (slug);
ALTER TABLE user_protocol_assignments ADD PRIMARY KEY (id);
ALTER TABLE user_protocol_assignments ADD CONSTRAINT upa_user_fk
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE user_protocol_assignments ADD CONSTRAINT upa_protocol_fk
    FOREIGN KEY (protocol_id) REFERENCES training_protocols (id);
CREATE INDEX upa_user_idx ON user_protocol_assignments (user_id, started_on);
CREATE INDEX upa_protocol_idx ON user_protocol_assignments (protocol_id);
ALTER TABLE vo2max_calculations ADD PRIMARY KEY (id);
ALTER TABLE vo2max_calculations ADD CONSTRAINT vo2max_user_fk
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX vo2max_user_time_idx ON vo2max_calculations (user_id, calculated_at);
ALTER TABLE session_metrics ADD PRIMARY KEY (id);
ALTER TABLE session_metrics ADD CONSTRAINT session_metrics_user_fk
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE session_metrics ADD CONSTRAINT session_metrics_assignment_fk
    FOREIGN KEY (assignment_id) REFERENCES user_protocol_assignments (id) ON DELETE CASCADE;
CREATE INDEX session_metrics_session_idx ON session_metrics (session_id, elapsed_s);
CREATE INDEX session_metrics_user_time_idx ON session_metrics (user_id, recorded_at);
ALTER TABLE biomarker_measurements ADD PRIMARY KEY (id);
ALTER TABLE biomarker_measurements ADD CONSTRAINT biomarker_user_fk
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX biomarker_user_kind_idx ON biomarker_measurements (user_id, kind, measured_at);
CREATE INDEX biomarker_payload_idx ON biomarker_measurements USING gin (payload jsonb_path_ops);
ALTER TABLE app_config ADD PRIMARY KEY (key);
ALTER TABLE audit_logs ADD PRIMARY KEY (id);
CREATE INDEX audit_logs_time_idx ON audit_logs (occurred_at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_user_id, occurred_at);
ALTER TABLE analytics_events ADD PRIMARY KEY (id);
CREATE INDEX analytics_events_name_time_idx ON analytics_events (event_name, occurred_at);
CREATE INDEX analytics_events_user_idx ON analytics_events (user_id);
ALTER TABLE system_logs ADD PRIMARY KEY (id);
CREATE INDEX system_logs_time_idx ON system_logs (logged_at);
"""

# Primary-key ordering for checksums.
ORDER_BY = {t: "id" for t in TABLES} | {"app_config": "key"}

FIRST_NAMES = (
    "Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Chloe", "Kai", "Aisha",
    "Yuki", "Lena", "Omar", "Nina", "Ivan", "Zara", "Hugo", "Priya", "Jonas", "Ines", "Tariq",
    "Maya", "Finn", "Elif", "Ravi", "Sara", "Leo", "Amara", "Diego", "Hana", "Oskar",
)
LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Nguyen", "Okafor", "Silva", "Tanaka",
    "Johansson", "Dubois", "Novak", "Kim", "Patel", "Haddad", "O'Brien", "Larsen", "Moreau",
    "Fischer", "Costa", "Ivanova", "Chen", "Mensah", "Schmidt", "Hernández", "Berg",
)
TIMEZONES = (
    "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "America/Sao_Paulo", "Asia/Tokyo", "Australia/Sydney", "Europe/Madrid", "Asia/Kolkata",
    "Africa/Lagos", "America/Chicago", "Europe/Stockholm",
)
PROTOCOLS = (
    # slug, name, sport, goal, weeks, sessions/week, zone (fraction of HR reserve), intervals
    ("norwegian-4x4", "Norwegian 4x4", "running", "vo2max", 8, 3, 0.90, True),
    ("zone2-base", "Zone 2 Base Builder", "cycling", "aerobic_base", 12, 4, 0.62, False),
    ("polarized-80-20", "Polarized 80/20", "running", "vo2max", 10, 5, 0.70, True),
    ("threshold-2x20", "Threshold 2x20", "cycling", "lactate_threshold", 6, 3, 0.85, True),
    ("tabata-hiit", "Tabata HIIT", "mixed", "vo2max", 4, 3, 0.93, True),
    ("hill-repeats", "Hill Repeats", "running", "strength_endurance", 6, 2, 0.88, True),
    ("marathon-base", "Marathon Base", "running", "endurance", 16, 5, 0.68, False),
    ("rowing-pyramid", "Rowing Pyramid", "rowing", "vo2max", 8, 3, 0.86, True),
    ("swim-css", "Swim CSS Builder", "swimming", "threshold", 8, 3, 0.80, True),
    ("ramp-test-prep", "Ramp Test Preparation", "cycling", "testing", 2, 3, 0.78, True),
    ("couch-to-5k", "Couch to 5K", "running", "general_fitness", 9, 3, 0.65, True),
    ("sweet-spot", "Sweet Spot Base", "cycling", "ftp", 8, 4, 0.82, False),
    ("masters-maintenance", "Masters Maintenance", "mixed", "healthy_aging", 12, 3, 0.70, False),
    ("30-30-intervals", "30/30 Intervals", "running", "vo2max", 6, 2, 0.92, True),
    ("long-slow-distance", "Long Slow Distance", "running", "endurance", 12, 2, 0.60, False),
    ("erg-5k-prep", "Erg 5K Preparation", "rowing", "race", 8, 4, 0.83, True),
)
VO2_METHODS = ("ramp_test", "cooper_12min", "hr_ratio", "rockport_walk", "submax_astrand",
               "wearable_estimate")
BIOMARKERS = ("blood_panel", "lactate_profile", "hrv", "body_composition", "sleep",
              "resting_metabolic_rate")
BIOMARKER_SOURCES = {
    "blood_panel": ("lab_quest", "lab_labcorp", "manual"),
    "lactate_profile": ("lab_sports", "portable_analyzer"),
    "hrv": ("oura", "whoop", "garmin", "apple_health", "polar"),
    "body_composition": ("dexa", "smart_scale", "bioimpedance"),
    "sleep": ("oura", "whoop", "garmin", "apple_health"),
    "resting_metabolic_rate": ("metabolic_cart", "estimate"),
}
AUDIT_ACTIONS = (
    ("auth.login", "session"), ("auth.logout", "session"), ("auth.mfa_enabled", "user"),
    ("user.profile_updated", "user"), ("user.password_changed", "user"),
    ("user.consent_updated", "consent"), ("user.data_export_requested", "export"),
    ("protocol.assigned", "assignment"), ("protocol.completed", "assignment"),
    ("biomarker.imported", "biomarker"), ("admin.user_viewed", "user"),
    ("billing.subscription_changed", "subscription"),
)
EVENTS = (
    ("app_open", 30), ("screen_view", 40), ("workout_start", 8), ("workout_complete", 7),
    ("protocol_view", 6), ("vo2max_result_view", 4), ("biomarker_sync", 3), ("share_result", 1),
    ("notification_open", 5), ("paywall_view", 2), ("subscription_start", 1),
    ("settings_change", 2),
)
SCREENS = ("home", "dashboard", "protocols", "protocol_detail", "session_live", "history",
           "vo2max_trend", "biomarkers", "settings", "profile", "paywall")
USER_AGENTS = (
    "VO2MaxApp/3.14.2 (iPhone15,2; iOS 17.5)", "VO2MaxApp/3.14.1 (Pixel 8; Android 14)",
    "VO2MaxApp/3.13.0 (iPad13,4; iPadOS 17.4)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) "
    "AppleWebKit/605.1.15 Safari/605.1.15", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "Chrome/126.0 Safari/537.36", "VO2MaxApp/3.12.7 (SM-S918B; Android 14)",
)
APP_VERSIONS = ("3.12.7", "3.13.0", "3.14.1", "3.14.2", "3.15.0-beta.2")
SERVICES = ("api", "worker", "scheduler", "sync-garmin", "sync-oura", "push", "billing")
LOG_MESSAGES = {
    "INFO": ("request completed", "job finished", "sync batch imported", "cache warmed",
             "push notifications sent"),
    "WARN": ("slow query over 500 ms", "retrying upstream call", "rate limit close",
             "token refresh delayed"),
    "ERROR": ("upstream returned 502", "webhook delivery failed", "deadlock detected, retried"),
}


class SeedError(RuntimeError):
    """The target database cannot be seeded as asked."""


def _rng(seed: int, table: str) -> random.Random:
    return random.Random(f"{seed}:{table}")


def _np_rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, *parts])


def _ts(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = max(1, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randrange(span))


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass
class User:
    id: int
    created_at: datetime
    sex: str
    age: int
    weight: float
    resting_hr: int
    max_hr: int
    vo2max: float
    assignments: list[tuple[int, int, datetime]] = field(default_factory=list)  # id, proto, start


@dataclass
class TableStat:
    rows: int = 0
    bytes: int = 0


@dataclass
class SeedReport:
    seed: int
    scale: float
    seconds: float
    tables: dict[str, TableStat]
    database_bytes: int

    @property
    def data_bytes(self) -> int:
        """Tables and their indexes (the database size less the empty catalog)."""
        return sum(s.bytes for s in self.tables.values())

    @property
    def data_mb(self) -> float:
        return self.data_bytes / 1e6

    @property
    def database_mb(self) -> float:
        return self.database_bytes / 1e6

    def lines(self) -> list[str]:
        out = [f"{'table':<28}{'rows':>12}{'MB':>10}"]
        for name, stat in self.tables.items():
            out.append(f"{name:<28}{stat.rows:>12,}{stat.bytes / 1e6:>10.1f}")
        out.append(f"{'data total':<28}{sum(s.rows for s in self.tables.values()):>12,}"
                   f"{self.data_mb:>10.1f}")
        out.append(f"seed {self.seed}, scale {self.scale:g}: {self.data_mb:.0f} MB of data "
                   f"({self.database_mb:.0f} MB database) in {self.seconds:.1f} s")
        return out


def scale_for_mb(megabytes: float) -> float:
    """The scale factor that gives about ``megabytes`` of data (tables and indexes)."""
    return round(megabytes / MB_PER_SCALE, 2)


# ---- generators ---------------------------------------------------------------------------


class Generator:
    """Generates every table for one (seed, scale); ``load`` writes them with COPY."""

    def __init__(self, seed: int = DEFAULT_SEED, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.seed, self.scale = seed, scale
        self.n_users = max(5, round(USERS_PER_SCALE * scale))
        self.users: list[User] = []
        self.next_assignment_id = 1

    # -- small tables (Python) --

    def protocols(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "training_protocols")
        for i, (slug, name, sport, goal, weeks, per_week, zone, intervals) in enumerate(
                PROTOCOLS, start=1):
            zones = {
                "model": "heart_rate_reserve",
                "target": zone,
                "intervals": intervals,
                "zones": [{"zone": z, "low": round(0.5 + 0.1 * (z - 1), 2),
                           "high": round(0.6 + 0.1 * (z - 1), 2)} for z in range(1, 6)],
            }
            description = (f"{name}: a {weeks}-week {sport} plan with {per_week} sessions a week "
                           f"aimed at {goal.replace('_', ' ')}. Work at about {zone:.0%} of heart "
                           "rate reserve" + (" in repeated intervals." if intervals else "."))
            yield (i, slug, name, sport, goal, description, weeks, per_week, _dumps(zones),
                   rng.random() < 0.9, _ts(rng, AS_OF - timedelta(days=1500),
                                           AS_OF - timedelta(days=1000)))

    def users_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "users")
        for uid in range(1, self.n_users + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            sex = rng.choices("FMX", weights=(48, 49, 3))[0]
            age = rng.randint(18, 72)
            height = round(rng.gauss(166 if sex == "F" else 178, 7), 1)
            bmi = max(17.0, rng.gauss(23.5, 2.8))
            weight = round(bmi * (height / 100) ** 2, 1)
            resting = max(38, min(95, round(rng.gauss(62, 8))))
            max_hr = max(140, min(215, round(208 - 0.7 * age + rng.gauss(0, 6))))
            vo2max = max(18.0, rng.gauss(48 if sex == "M" else 41, 7) - 0.25 * (age - 30))
            created = _ts(rng, AS_OF - timedelta(days=1000), AS_OF - timedelta(days=45))
            updated = _ts(rng, created, AS_OF)
            deleted = _ts(rng, updated, AS_OF) if rng.random() < 0.015 else None
            birth = date(AS_OF.year - age, 1, 1) + timedelta(days=rng.randrange(365))
            user = User(uid, created, sex, age, weight, resting, max_hr, vo2max)
            self._assign(rng, user)
            self.users.append(user)
            yield (uid, f"{first}.{last}.{uid}@example.com".lower().replace("'", ""),
                   f"{first} {last[0]}.", birth, sex, height, weight, resting, max_hr,
                   rng.choice(TIMEZONES), "imperial" if rng.random() < 0.2 else "metric",
                   rng.random() < 0.35, created, updated, deleted)

    def _assign(self, rng: random.Random, user: User) -> None:
        """Consecutive protocol assignments covering the user's life in the app."""
        start = user.created_at
        while start < AS_OF:
            proto = rng.randrange(len(PROTOCOLS))
            user.assignments.append((self.next_assignment_id, proto + 1, start))
            self.next_assignment_id += 1
            start += timedelta(weeks=PROTOCOLS[proto][4], days=rng.randint(0, 20))

    def assignments_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "user_protocol_assignments")
        for user in self.users:
            for i, (aid, proto, start) in enumerate(user.assignments):
                weeks = PROTOCOLS[proto - 1][4]
                last = i == len(user.assignments) - 1
                status = ("active" if rng.random() < 0.85 else "paused") if last else \
                    ("completed" if rng.random() < 0.7 else "abandoned")
                yield (aid, user.id, proto, status, start.date(),
                       (start + timedelta(weeks=weeks)).date(),
                       round(rng.uniform(35, 100), 2), start)

    def sessions(self) -> Iterator[list[tuple]]:
        """Per batch of users: (session_id, user, assignment_id, protocol, start, samples)."""
        rng = _rng(self.seed, "sessions")
        sid = 1
        for b in range(0, len(self.users), USER_BATCH):
            batch = []
            for user in self.users[b:b + USER_BATCH]:
                starts = [a[2] for a in user.assignments]
                n = int(rng.expovariate(1 / SESSIONS_PER_USER))  # most users train little
                times = sorted(_ts(rng, user.created_at, AS_OF - timedelta(hours=2))
                               for _ in range(n))
                for t in times:
                    idx = bisect.bisect_right(starts, t) - 1
                    aid, proto, _ = user.assignments[max(0, idx)]
                    minutes = rng.randint(20, 75)
                    batch.append((sid, user, aid, proto, t, minutes * 60 // SAMPLE_INTERVAL_S))
                    sid += 1
            yield batch

    def vo2max_rows(self, sessions: list[tuple], next_id: int) -> list[tuple]:
        rng = _rng(self.seed, f"vo2max_calculations:{next_id}")
        rows = []
        for sid, user, _aid, proto, start, samples in sessions:
            if rng.random() > 0.3:
                continue
            method = rng.choice(VO2_METHODS)
            days = (start - user.created_at).days
            value = user.vo2max * (1 + min(0.15, days / 3000)) + rng.gauss(0, 1.5)
            inputs = {"hr_rest": user.resting_hr, "hr_max": user.max_hr,
                      "weight_kg": user.weight, "age": user.age, "protocol_id": proto}
            if method == "cooper_12min":
                inputs["distance_m"] = round((value + 11.3) / 0.0225)
            elif method == "ramp_test":
                inputs |= {"peak_power_w": round(value * user.weight / 10.8),
                           "duration_s": samples * SAMPLE_INTERVAL_S}
            elif method == "rockport_walk":
                inputs |= {"walk_time_s": rng.randint(700, 1200),
                           "end_hr": rng.randint(110, 160)}
            rows.append((next_id + len(rows), user.id, sid, method, round(value, 2),
                         round(rng.uniform(0.55, 0.98), 2), _dumps(inputs),
                         start + timedelta(seconds=samples * SAMPLE_INTERVAL_S + 60)))
        return rows

    def biomarker_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "biomarker_measurements")
        bid = 1
        for user in self.users:
            for _ in range(rng.randint(15, 45)):
                kind = rng.choice(BIOMARKERS)
                yield (bid, user.id, kind, rng.choice(BIOMARKER_SOURCES[kind]),
                       _ts(rng, user.created_at, AS_OF), _dumps(self._biomarker(rng, kind, user)))
                bid += 1

    @staticmethod
    def _biomarker(rng: random.Random, kind: str, user: User) -> dict:
        g = rng.gauss
        if kind == "blood_panel":
            return {"hemoglobin_g_dl": round(g(14.5 if user.sex == "M" else 13.2, 1), 1),
                    "hematocrit_pct": round(g(43, 3), 1), "ferritin_ng_ml": round(g(90, 40), 0),
                    "glucose_mg_dl": round(g(92, 9), 0), "hba1c_pct": round(g(5.3, 0.3), 1),
                    "ldl_mg_dl": round(g(110, 25), 0), "hdl_mg_dl": round(g(58, 12), 0),
                    "triglycerides_mg_dl": round(g(100, 35), 0),
                    "crp_mg_l": round(abs(g(1.2, 1.0)), 2), "vitamin_d_ng_ml": round(g(32, 9), 0),
                    "units": "US", "fasting": rng.random() < 0.8}
        if kind == "lactate_profile":
            steps = [{"power_w": 100 + 25 * i, "hr": user.resting_hr + 15 + 11 * i,
                      "lactate_mmol": round(0.9 + 0.04 * i ** 2.4 + abs(g(0, 0.1)), 2)}
                     for i in range(rng.randint(6, 10))]
            return {"protocol": "step_25w_3min", "steps": steps,
                    "lt1_w": 150 + rng.randint(-30, 60), "lt2_w": 230 + rng.randint(-40, 80)}
        if kind == "hrv":
            return {"rmssd_ms": round(abs(g(48, 18)), 1), "sdnn_ms": round(abs(g(60, 20)), 1),
                    "resting_hr": user.resting_hr + rng.randint(-4, 6),
                    "window": "night", "readiness": rng.randint(40, 100)}
        if kind == "body_composition":
            fat = round(max(6.0, g(22 if user.sex == "F" else 16, 5)), 1)
            return {"weight_kg": round(user.weight + g(0, 1.5), 1), "body_fat_pct": fat,
                    "lean_mass_kg": round(user.weight * (1 - fat / 100), 1),
                    "visceral_fat_rating": rng.randint(2, 14), "bone_mass_kg": round(g(3, 0.4), 1)}
        if kind == "sleep":
            total = rng.randint(300, 540)
            return {"total_min": total, "deep_min": round(total * rng.uniform(0.12, 0.25)),
                    "rem_min": round(total * rng.uniform(0.18, 0.27)),
                    "awake_min": rng.randint(5, 60), "efficiency_pct": rng.randint(75, 98),
                    "spo2_avg_pct": round(g(96, 1.2), 1)}
        return {"rmr_kcal_day": round(g(1650 if user.sex == "F" else 1900, 180)),
                "rq": round(g(0.84, 0.04), 2), "method": "indirect_calorimetry"}

    def app_config_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "app_config")
        entries = [
            ("feature.live_coaching", {"enabled": True, "rollout_pct": 50}, "Live audio coaching"),
            ("feature.biomarker_import", {"enabled": True, "sources": list(BIOMARKER_SOURCES)},
             "Biomarker import sources"),
            ("feature.social_sharing", {"enabled": False}, "Share results to social networks"),
            ("vo2max.default_method", {"method": "hr_ratio"}, "Estimate used without a test"),
            ("vo2max.norms", {"source": "ACSM 11th ed.", "percentiles": [10, 25, 50, 75, 90]},
             "Population norms for ranking"),
            ("zones.model", {"model": "heart_rate_reserve", "count": 5}, "Training zone model"),
            ("sync.garmin", {"interval_s": 900, "batch": 500}, "Garmin sync settings"),
            ("sync.oura", {"interval_s": 3600, "batch": 200}, "Oura sync settings"),
            ("push.quiet_hours", {"start": "22:00", "end": "07:00"}, "No notifications then"),
            ("billing.plans", {"monthly_usd": 9.99, "yearly_usd": 79.0, "trial_days": 14},
             "Subscription plans"),
            ("privacy.retention_days", {"analytics": 395, "audit": 2555}, "Data retention"),
            ("app.min_version", {"ios": "3.12.0", "android": "3.12.0"}, "Force-upgrade floor"),
        ]
        for i in range(1, 29):
            entries.append((f"experiment.exp_{i:03d}", {"variant_weights": [50, 50],
                                                        "active": rng.random() < 0.4},
                            f"A/B experiment {i}"))
        for key, value, description in entries:
            yield (key, _dumps(value), description, rng.choice(("ops", "growth", "platform")),
                   _ts(rng, AS_OF - timedelta(days=400), AS_OF))

    def audit_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "audit_logs")
        aid = 1
        for user in self.users:
            for _ in range(rng.randint(40, 160)):
                action, entity = rng.choice(AUDIT_ACTIONS)
                admin = action.startswith("admin.")
                ip = (f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                      if admin else f"{rng.randint(11, 223)}.{rng.randrange(256)}."
                      f"{rng.randrange(256)}.{rng.randrange(1, 255)}")
                details = {"request_id": f"{rng.getrandbits(64):016x}", "outcome":
                           "success" if rng.random() < 0.97 else "denied"}
                if action == "user.profile_updated":
                    details["fields"] = rng.sample(["weight_kg", "height_cm", "timezone",
                                                    "units", "display_name"], 2)
                yield (aid, _ts(rng, user.created_at, AS_OF),
                       rng.randint(1, self.n_users) if admin else user.id,
                       "support_admin" if admin else "member", action, entity,
                       str(user.id if entity == "user" else rng.getrandbits(40)), ip,
                       rng.choice(USER_AGENTS), _dumps(details))
                aid += 1

    def analytics_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "analytics_events")
        names = [e for e, _ in EVENTS]
        weights = [w for _, w in EVENTS]
        eid = 1
        for user in self.users:
            platform = rng.choice(("ios", "android", "web"))
            for _ in range(rng.randint(10, 60)):
                key = uuid.UUID(int=rng.getrandbits(128), version=4)
                t = _ts(rng, user.created_at, AS_OF)
                version = rng.choice(APP_VERSIONS)
                for name in rng.choices(names, weights, k=rng.randint(3, 12)):
                    props: dict[str, object] = {"screen": rng.choice(SCREENS)}
                    if name in ("workout_start", "workout_complete"):
                        props |= {"protocol_id": rng.randint(1, len(PROTOCOLS)),
                                  "duration_s": rng.randint(600, 4800)}
                    elif name == "screen_view":
                        props["dwell_ms"] = rng.randint(300, 90000)
                    elif name == "paywall_view":
                        props["variant"] = rng.choice(("a", "b"))
                    yield (eid, user.id, key, name, t, platform, version, _dumps(props))
                    t += timedelta(seconds=rng.randint(2, 240))
                    eid += 1

    def system_log_rows(self) -> Iterator[tuple]:
        rng = _rng(self.seed, "system_logs")
        for lid in range(1, self.n_users * 10 + 1):
            level = rng.choices(("INFO", "WARN", "ERROR"), (90, 8, 2))[0]
            yield (lid, _ts(rng, AS_OF - timedelta(days=14), AS_OF), level,
                   rng.choice(SERVICES),
                   f"{rng.choice(LOG_MESSAGES[level])} "
                   f"(trace={rng.getrandbits(64):016x}, ms={rng.randint(1, 3000)})")

    # -- the big one (numpy, binary COPY) --

    SAMPLE_DTYPE = np.dtype([
        ("nf", ">i2"),
        ("l_id", ">i4"), ("id", ">i8"),
        ("l_session", ">i4"), ("session_id", ">i8"),
        ("l_user", ">i4"), ("user_id", ">i8"),
        ("l_assign", ">i4"), ("assignment_id", ">i8"),
        ("l_time", ">i4"), ("recorded_at", ">i8"),
        ("l_elapsed", ">i4"), ("elapsed_s", ">i4"),
        ("l_hr", ">i4"), ("heart_rate_bpm", ">i2"),
        ("l_power", ">i4"), ("power_watts", ">i2"),
        ("l_cadence", ">i4"), ("cadence_rpm", ">i2"),
        ("l_speed", ">i4"), ("speed_kmh", ">f4"),
        ("l_vo2", ">i4"), ("vo2_ml_kg_min", ">f4"),
        ("l_rer", ">i4"), ("rer", ">f4"),
    ])
    SAMPLE_COLUMNS = ("id", "session_id", "user_id", "assignment_id", "recorded_at", "elapsed_s",
                      "heart_rate_bpm", "power_watts", "cadence_rpm", "speed_kmh",
                      "vo2_ml_kg_min", "rer")

    def samples(self, batch_no: int, sessions: list[tuple], first_id: int) -> np.ndarray:
        """Every sample of a batch of sessions, as rows of PostgreSQL's binary COPY format."""
        g = _np_rng(self.seed, 5, batch_no)
        counts = np.array([s[5] for s in sessions], dtype=np.int64)
        total = int(counts.sum())
        seg = np.repeat(np.arange(len(sessions)), counts)
        offsets = np.cumsum(counts) - counts
        k = np.arange(total, dtype=np.int64) - offsets[seg]
        frac = k / np.maximum(counts[seg] - 1, 1)

        def per_session(values: list) -> np.ndarray:
            return np.asarray(values)[seg]

        rest = per_session([s[1].resting_hr for s in sessions]).astype(np.float64)
        hmax = per_session([s[1].max_hr for s in sessions]).astype(np.float64)
        target = per_session([PROTOCOLS[s[3] - 1][6] for s in sessions])
        intervals = per_session([PROTOCOLS[s[3] - 1][7] for s in sessions])
        weight = per_session([s[1].weight for s in sessions])
        vo2max = per_session([s[1].vo2max for s in sessions])
        start_us = per_session([int((s[4] - PG_EPOCH).total_seconds()) * 1_000_000
                                for s in sessions])
        # Warm-up and cool-down ramps around the protocol's target, with work/rest intervals
        # (4 min on, 3 min off) for interval protocols, then physiological noise.
        ramp = np.clip(np.minimum(frac / 0.12, (1 - frac) / 0.1), 0, 1)
        on = ((k * SAMPLE_INTERVAL_S) // 60) % 7 < 4
        level = np.where(intervals, np.where(on, target + 0.05, target - 0.25), target)
        hrr = np.clip(0.3 + (level - 0.3) * ramp + g.normal(0, 0.03, total), 0.05, 1.0)
        out = np.empty(total, dtype=self.SAMPLE_DTYPE)
        out["nf"] = 12
        for name, size in (("l_id", 8), ("l_session", 8), ("l_user", 8), ("l_assign", 8),
                           ("l_time", 8), ("l_elapsed", 4), ("l_hr", 2), ("l_power", 2),
                           ("l_cadence", 2), ("l_speed", 4), ("l_vo2", 4), ("l_rer", 4)):
            out[name] = size
        out["id"] = np.arange(first_id, first_id + total)
        out["session_id"] = per_session([s[0] for s in sessions])
        out["user_id"] = per_session([s[1].id for s in sessions])
        out["assignment_id"] = per_session([s[2] for s in sessions])
        out["elapsed_s"] = k * SAMPLE_INTERVAL_S
        out["recorded_at"] = start_us + k * SAMPLE_INTERVAL_S * 1_000_000
        out["heart_rate_bpm"] = np.rint(rest + hrr * (hmax - rest))
        out["power_watts"] = np.clip(np.rint(weight * (0.6 + 3.6 * hrr ** 1.3)
                                             + g.normal(0, 12, total)), 0, 1500)
        out["cadence_rpm"] = np.clip(np.rint(72 + 22 * hrr + g.normal(0, 3, total)), 0, 200)
        out["speed_kmh"] = np.round(np.clip(6 + 14 * hrr + g.normal(0, 0.4, total), 0, 60), 2)
        out["vo2_ml_kg_min"] = np.round(vo2max * (0.12 + 0.88 * hrr) + g.normal(0, 0.8, total), 1)
        out["rer"] = np.round(np.clip(0.74 + 0.36 * hrr + g.normal(0, 0.015, total), 0.7, 1.3),
                              3)
        return out


# ---- loading --------------------------------------------------------------------------------

BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
BINARY_TRAILER = struct.pack(">h", -1)

COLUMNS = {
    "users": ("id", "email", "display_name", "birth_date", "sex", "height_cm", "weight_kg",
              "resting_hr", "max_hr", "timezone", "units", "marketing_opt_in", "created_at",
              "updated_at", "deleted_at"),
    "training_protocols": ("id", "slug", "name", "sport", "goal", "description", "weeks",
                           "sessions_per_week", "intensity_zones", "is_public", "created_at"),
    "user_protocol_assignments": ("id", "user_id", "protocol_id", "status", "started_on",
                                  "ends_on", "adherence_pct", "created_at"),
    "vo2max_calculations": ("id", "user_id", "session_id", "method", "vo2max_ml_kg_min",
                            "confidence", "inputs", "calculated_at"),
    "biomarker_measurements": ("id", "user_id", "kind", "source", "measured_at", "payload"),
    "app_config": ("key", "value", "description", "updated_by", "updated_at"),
    "audit_logs": ("id", "occurred_at", "actor_user_id", "actor_role", "action", "entity",
                   "entity_id", "ip_address", "user_agent", "details"),
    "analytics_events": ("id", "user_id", "session_key", "event_name", "occurred_at",
                         "platform", "app_version", "properties"),
    "system_logs": ("id", "logged_at", "level", "service", "message"),
}


def _copy_stmt(table: str, columns: tuple[str, ...], binary: bool = False) -> sql.Composed:
    opts = sql.SQL("(FORMAT BINARY, FREEZE)" if binary else "(FREEZE)")
    return sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)), opts)


def _copy_rows(cur: psycopg.Cursor, table: str, rows: Iterator[tuple]) -> int:
    n = 0
    with cur.copy(_copy_stmt(table, COLUMNS[table])) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def existing_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
        (list(TABLES),)).fetchall()
    return sorted(r[0] for r in rows)


def seed(url: str, scale: float = 1.0, seed: int = DEFAULT_SEED, *, replace: bool = False,
         log: Callable[[str], None] | None = None) -> SeedReport:
    """Create the schema in the database at ``url`` and fill it. Refuses a database that
    already has these tables unless ``replace`` (which drops them first)."""
    log = log or (lambda _msg: None)
    started = time.monotonic()
    gen = Generator(seed, scale)
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=False) as conn:
        present = existing_tables(conn)
        if present and not replace:
            raise SeedError(f"the database already has {', '.join(present)}; "
                             "use --replace to drop and re-create them")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET TIME ZONE 'UTC'")
        with conn.cursor() as cur:
            for table in present:
                cur.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(table)))
            cur.execute(SCHEMA)
            counts["training_protocols"] = _copy_rows(cur, "training_protocols", gen.protocols())
            counts["users"] = _copy_rows(cur, "users", gen.users_rows())
            counts["user_protocol_assignments"] = _copy_rows(
                cur, "user_protocol_assignments", gen.assignments_rows())
            log(f"users: {counts['users']:,}")
            samples, vo2_rows = 0, []
            with cur.copy(_copy_stmt("session_metrics", Generator.SAMPLE_COLUMNS,
                                     binary=True)) as copy:
                copy.write(BINARY_HEADER)
                for batch_no, sessions in enumerate(gen.sessions()):
                    block = gen.samples(batch_no, sessions, samples + 1)
                    copy.write(block.tobytes())
                    samples += len(block)
                    vo2_rows.extend(gen.vo2max_rows(sessions, len(vo2_rows) + 1))
                    if batch_no % 20 == 19:
                        log(f"session_metrics: {samples:,} samples")
                copy.write(BINARY_TRAILER)
            counts["session_metrics"] = samples
            counts["vo2max_calculations"] = _copy_rows(cur, "vo2max_calculations",
                                                       iter(vo2_rows))
            for table, rows in (("biomarker_measurements", gen.biomarker_rows()),
                                ("app_config", gen.app_config_rows()),
                                ("audit_logs", gen.audit_rows()),
                                ("analytics_events", gen.analytics_rows()),
                                ("system_logs", gen.system_log_rows())):
                counts[table] = _copy_rows(cur, table, rows)
                log(f"{table}: {counts[table]:,}")
            log("keys, foreign keys and indexes")
            cur.execute(CONSTRAINTS)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
        sizes = dict(conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relname = ANY(%s)", (list(TABLES),)).fetchall())
        db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    stats = {t: TableStat(counts.get(t, 0), sizes.get(t, 0)) for t in TABLES}
    return SeedReport(seed, scale, time.monotonic() - started, stats, db_bytes)


def checksum(url: str) -> dict[str, str]:
    """SHA-256 per table of its rows in primary-key order (text form, UTC), streamed, so it
    works at any size. The same seed and scale always give the same checksums."""
    out = {}
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("SET extra_float_digits = 1")
        for table in TABLES:
            digest = hashlib.sha256()
            query = sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT").format(
                sql.Identifier(table), sql.Identifier(ORDER_BY[table]))
            with cur.copy(query) as copy:
                for block in copy:
                    digest.update(block)
            out[table] = digest.hexdigest()
    return out


def combined_checksum(per_table: dict[str, str]) -> str:
    return hashlib.sha256(_dumps(dict(sorted(per_table.items()))).encode()).hexdigest()


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    return _to_url(info)


def _to_url(info: dict) -> str:
    user = info.get("user", "postgres")
    auth = user + (f":{info['password']}" if info.get("password") else "")
    return f"postgresql://{auth}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/" \
           f"{info['dbname']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dev.seed",
        description="Create and fill a realistic VO2Max Training App database "
                    f"(about {MB_PER_SCALE:g} MB per unit of scale).")
    parser.add_argument("--url", required=True, help="postgresql:// URL of the target database")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size factor: 1 ≈ 10 MB, 10 ≈ 100 MB, 100 ≈ 1 GB (default 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--replace", action="store_true",
                        help="drop these tables first if they exist")
    parser.add_argument("--create-database", action="store_true",
                        help="create the database named in --url first")
    parser.add_argument("--checksum", action="store_true", help="print the data checksum")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.create_database:
        info = psycopg.conninfo.conninfo_to_dict(args.url)
        name = info["dbname"]
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            create_database(_to_url({**info, "dbname": "postgres"}), name)
    log = (lambda _m: None) if args.quiet else (lambda m: print(f"  … {m}", file=sys.stderr))
    try:
        report = seed(args.url, args.scale, args.seed, replace=args.replace, log=log)
    except (SeedError, psycopg.OperationalError) as exc:
        print(f"seed: error: {exc}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    if args.checksum:
        print(f"checksum {combined_checksum(checksum(args.url))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
