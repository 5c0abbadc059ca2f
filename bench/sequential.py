"""A faithful re-creation of ``scripts/backup-database.sh`` from the original strategy, for
the benchmark's baseline:

    pg_dump $DATABASE_URL > "${BACKUP_DIR}/${BACKUP_NAME}.sql"
    gzip "${BACKUP_DIR}/${BACKUP_NAME}.sql"
    aws s3 cp …sql.gz s3://$AWS_S3_BUCKET/database/$ENVIRONMENT/
    gsutil cp …sql.gz gs://$GOOGLE_CLOUD_BUCKET/database/$ENVIRONMENT/
    az storage blob upload …                      (the "multi-cloud" section's third copy)
    rm …sql.gz

Each step runs after the previous one, as in the script: a plain-SQL dump to a local file,
gzip at its default level, then one upload per cloud with the SDK call each CLI uses
(boto3 ``upload_file`` for ``aws s3 cp``, ``Blob.upload_from_filename`` for ``gsutil cp``,
``BlobClient.upload_blob`` for ``az storage blob upload``), then the file is removed.

Run: ``python -m bench.sequential`` with the job's environment variables (DATABASE_URL,
VO2DR_ENVIRONMENT, VO2DR_S3_BUCKET, VO2DR_GCS_BUCKET, VO2DR_AZURE_CONTAINER_URL and the
emulator variables). Prints a JSON line with the time of each step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> int:
    from dev import localcloud
    from dev.servers import PG_BIN

    env = dict(os.environ)
    environment = env["VO2DR_ENVIRONMENT"]
    name = f"vo2max_{environment}_{datetime.now(UTC):%Y%m%d_%H%M%S}"
    key = f"database/{environment}/{name}.sql.gz"
    steps: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vo2dr-seq-") as backup_dir:
        sql_file = Path(backup_dir) / f"{name}.sql"
        gz_file = Path(backup_dir) / f"{name}.sql.gz"

        t = time.monotonic()
        with open(sql_file, "wb") as out:
            subprocess.run([str(PG_BIN / "pg_dump"), env["DATABASE_URL"]], stdout=out,
                           check=True)
        steps["pg_dump"] = time.monotonic() - t
        plain_bytes = sql_file.stat().st_size

        t = time.monotonic()
        subprocess.run(["gzip", str(sql_file)], check=True)
        steps["gzip"] = time.monotonic() - t
        gz_bytes = gz_file.stat().st_size

        t = time.monotonic()
        s3, _ = localcloud._aws_clients(env)
        s3.upload_file(str(gz_file), env["VO2DR_S3_BUCKET"], key)
        steps["upload_s3"] = time.monotonic() - t

        t = time.monotonic()
        localcloud.gcs_client(env).bucket(env["VO2DR_GCS_BUCKET"]).blob(key) \
            .upload_from_filename(str(gz_file))
        steps["upload_gcs"] = time.monotonic() - t

        t = time.monotonic()
        container = env["VO2DR_AZURE_CONTAINER_URL"].rstrip("/").rsplit("/", 1)[1]
        blob = localcloud.azure_service(env).get_blob_client(container, key)
        with open(gz_file, "rb") as fh:
            blob.upload_blob(fh)
        steps["upload_azure"] = time.monotonic() - t

        gz_file.unlink()
    print(json.dumps({"steps": steps, "plain_bytes": plain_bytes, "gzip_bytes": gz_bytes,
                      "key": key}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
