"""The GCP standby runner: the same job, as Cloud Run v2 jobs, triggered by Cloud Scheduler a
few minutes after each primary (AWS) window starts, so an AWS outage does not stop backups.

One Cloud Run job per data class, each with its arguments baked in (``--data-class X
--if-missing`` after the image's ``python -m vo2dr.cloudrun``): the scheduler then needs only
``run.invoker`` on that one job (running a job *with overrides* would need the broader
``run.jobs.runWithOverrides``). ``--if-missing`` makes the standby a no-op whenever the primary
already stored a complete backup of that class in the current window.

The standby writes to the clouds it can reach without AWS: GCS (as its own service account,
through the Cloud Run metadata server) and Azure. For Azure it signs in as the Azure writer
identity with a Google-signed ID token of its own service account (``VO2DR_AZURE_ASSERTION=gcp``
in ``vo2dr.stores.credentials``; the writer identity has a federated credential with issuer
``https://accounts.google.com`` and subject = this service account's unique id, declared by
``infra.runtime`` through ``ContainerAccess.trust_google_service_account``), never with an
AWS-issued token: AWS is exactly what may be down. It gets no S3 bucket and no AWS KMS key, so
in an AWS outage it still encrypts to the offline recovery key alone (the manifest's
``encryption.kms_key_arn`` is empty, the job warns) and stores the copy outside AWS.

The snapshot sources (``assets``, ``logs``, issue 17) get no standby job: their origins are S3
buckets (``infra.config_application.check_snapshot_origins`` admits no other for the deployed
job), so when AWS is down there is nothing the standby could read, and while AWS is up the
primary's snapshot functions run. Their snapshots already in GCS and Azure stay restorable
without AWS (content and indexes are encrypted to the recovery key too); the next primary run
after an outage continues from the newest snapshot, and only what changed moves.

Identities, each with the minimum roles:
- the job's service account: create objects and read/list manifests in the backup bucket
  (``--if-missing`` lists the current window), and read the secret it mounts; nothing else;
- the scheduler's service account: ``run.invoker`` on the standby jobs, one binding per job.
Secrets (the database URL) live in Secret Manager and reach the container as environment
variables through ``secretKeyRef``; no secret value is written into the job spec. The recovery
public key is not a secret and is a plain environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
from vo2dr.exceptions import ConfigError
from vo2dr.strategy import MINUTES_PER_DAY, DataClass

_IMAGE = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[a-z0-9-]+)/"
    r"(?P<repository>[a-z0-9-]+)/(?P<image>[a-z0-9._/-]+)(?::(?P<tag>[\w.-]+)|@sha256:[0-9a-f]{64})$")
APIS = ("artifactregistry.googleapis.com", "run.googleapis.com", "cloudscheduler.googleapis.com",
        "secretmanager.googleapis.com")
RUN_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def standby_args(data_class: str) -> list[str]:
    """The container arguments after the image's entrypoint (``python -m vo2dr.cloudrun``):
    back up ``data_class`` only if no complete backup of it exists in the current window."""
    return ["--data-class", data_class, "--if-missing"]


def standby_source_args(kind: str) -> list[str]:
    """The same for an application source (code, config). The config runs without the app's
    secrets: they live in AWS Secrets Manager / SSM, which the standby cannot reach when it
    is needed (AWS is what failed) and may not read at all (only the AWS backup role may), so
    it backs up the files and the manifest records that the secrets are missing."""
    return ["--source", kind, "--if-missing",
            *(["--without-app-secrets"] if kind == "config" else [])]


@dataclass(frozen=True)
class ImageRef:
    location: str
    project: str
    repository: str
    reference: str


def parse_image(image: str, project: str) -> ImageRef:
    """The Artifact Registry repository that ``runtime.cloudRunImage`` lives in."""
    m = _IMAGE.match(image)
    if not m:
        raise ConfigError(f"vo2max-dr:runtime.cloudRunImage is {image!r}: use an Artifact "
                          "Registry reference, "
                          "LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG")
    if m["project"] != project:
        raise ConfigError(f"vo2max-dr:runtime.cloudRunImage is in project {m['project']!r}, not "
                          f"gcp:project {project!r}: push the image to this stack's project")
    return ImageRef(m["location"], m["project"], m["repository"], image)


def standby_cron(dc: DataClass, offset_minutes: int) -> str:
    """Five-field cron for the standby of ``dc``: the primary's clock-aligned windows, shifted
    by ``offset_minutes`` (e.g. RPO 15 min, offset 10 -> ``10-59/15 * * * *``)."""
    if dc.daily_at_utc is not None:
        hour, minute = (int(x) for x in dc.daily_at_utc.split(":"))
        at = (hour * 60 + minute + offset_minutes) % MINUTES_PER_DAY
        return f"{at % 60} {at // 60} * * *"
    if offset_minutes >= dc.rpo_minutes:
        raise ConfigError(f"vo2max-dr:monitoring.standbyOffsetMinutes ({offset_minutes}) must be "
                          f"below dataClasses.{dc.name}.rpoMinutes ({dc.rpo_minutes})")
    if dc.rpo_minutes < 60:
        return f"{offset_minutes}-59/{dc.rpo_minutes} * * * *"
    hours = dc.rpo_minutes // 60
    return f"{offset_minutes} * * * *" if hours == 1 else f"{offset_minutes} */{hours} * * *"


@dataclass(frozen=True)
class StandbyArgs:
    project: str
    region: str  # where the jobs and schedulers run
    name_prefix: str  # "vo2dr-<env>"
    image: ImageRef
    data_classes: Sequence[DataClass]
    offset_minutes: int
    cpu: str
    memory: str
    timeout_seconds: int
    max_retries: int
    bucket_name: pulumi.Input[str]  # the GCS backup bucket
    # The bucket's custom creator role (projects/<p>/roles/<id>): create with a retention.
    creator_role: pulumi.Input[str]
    # Non-secret job settings (environment, strategy, Azure container URL, ...).
    environment: Mapping[str, pulumi.Input[str]]
    # Secret settings: environment variable -> secret value; each becomes a Secret Manager secret.
    secrets: Mapping[str, pulumi.Input[str]]
    labels: Mapping[str, str] = field(default_factory=dict)
    deletion_protection: bool = True
    # The application sources the standby also covers: (kind, its data class), one job each.
    sources: Sequence[tuple[str, DataClass]] = ()
    # Secret settings of the source jobs only (the repository token); like ``secrets``, each
    # a Secret Manager secret only the job's service account may access. The database jobs
    # do not get them, nor the source jobs the database URL.
    source_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Standby(pulumi.ComponentResource):
    """Outputs: ``job_names`` and ``scheduler_names`` (data class -> name), ``repository_id``,
    ``service_account_email``."""

    def __init__(self, name: str, args: StandbyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:Standby", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = dict(args.labels)
        project = args.project
        apis = [gcp.projects.Service(f"{name}-{api.split('.')[0]}", project=project, service=api,
                                     disable_on_destroy=False, opts=child) for api in APIS]
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=apis)

        # The image is pushed here (see lambdas/Dockerfile); tags are immutable, so a tag in
        # the stack file always means the same bytes.
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-images", project=project, location=args.image.location,
            repository_id=args.image.repository, format="DOCKER",
            description="vo2dr job image for the Cloud Run standby",
            docker_config={"immutable_tags": True}, labels=labels, opts=after_apis)

        self.job_sa = gcp.serviceaccount.Account(
            f"{name}-job-sa", project=project, account_id=f"{args.name_prefix}-standby"[:30],
            display_name="vo2dr standby backup job (Cloud Run)", opts=child)
        self.scheduler_sa = gcp.serviceaccount.Account(
            f"{name}-scheduler-sa", project=project,
            account_id=f"{args.name_prefix}-standby-sched"[:30],
            display_name="vo2dr standby trigger (Cloud Scheduler)", opts=child)
        job_member = self.job_sa.email.apply(lambda e: f"serviceAccount:{e}")
        scheduler_member = self.scheduler_sa.email.apply(lambda e: f"serviceAccount:{e}")

        # Write new backups with their retention (the creator role cannot overwrite: that
        # needs delete), and read and list so --if-missing can see the current window. No
        # delete, no admin. What it can read is ciphertext it could not decrypt without the
        # KMS or the offline recovery key.
        self.bucket_roles = [
            gcp.storage.BucketIAMMember(f"{name}-job-{what}", bucket=args.bucket_name, role=role,
                                        member=job_member, opts=child)
            for what, role in (("create", args.creator_role),
                               ("objectViewer", "roles/storage.objectViewer"))
        ]

        self.secrets: dict[str, gcp.secretmanager.Secret] = {}
        base_envs: list[dict] = [{"name": k, "value": v}
                                 for k, v in sorted(args.environment.items())]
        base_envs.append({"name": "VO2DR_GCS_BUCKET", "value": args.bucket_name})
        secret_envs: dict[str, dict] = {}
        for var, value in sorted({**args.secrets, **args.source_secrets}.items()):
            secret_id = f"{args.name_prefix}-{var.lower().removeprefix('vo2dr_').replace('_', '-')}"
            secret = gcp.secretmanager.Secret(
                f"{name}-{var.lower()}", project=project, secret_id=secret_id,
                replication={"auto": {}}, labels=labels, opts=after_apis)
            version = gcp.secretmanager.SecretVersion(
                f"{name}-{var.lower()}-value", secret=secret.id,
                secret_data=pulumi.Output.secret(value), opts=child)
            gcp.secretmanager.SecretIamMember(
                f"{name}-{var.lower()}-accessor", project=project, secret_id=secret.secret_id,
                role="roles/secretmanager.secretAccessor", member=job_member, opts=child)
            secret_envs[var] = {"name": var, "value_source": {"secret_key_ref": {
                "secret": secret.secret_id, "version": version.version}}}
            self.secrets[var] = secret
        envs = base_envs + [secret_envs[v] for v in sorted(args.secrets)]
        source_envs = base_envs + [secret_envs[v] for v in sorted(args.source_secrets)]

        self.jobs: dict[str, gcp.cloudrunv2.Job] = {}
        self.schedulers: dict[str, gcp.cloudscheduler.Job] = {}
        runs = [(dc.name, dc, standby_args(dc.name), envs, f"standby {dc.name} backup")
                for dc in args.data_classes]
        runs += [(kind, dc, standby_source_args(kind), source_envs,
                  f"standby {kind} backup ({dc.name} class)") for kind, dc in args.sources]
        for key, dc, job_args, job_envs, what in runs:
            job_name = f"{args.name_prefix}-standby-{key}"
            job = gcp.cloudrunv2.Job(
                f"{name}-{key}", project=project, location=args.region, name=job_name,
                deletion_protection=args.deletion_protection, labels=labels,
                template={
                    "task_count": 1,
                    "parallelism": 1,
                    "template": {
                        "service_account": self.job_sa.email,
                        "timeout": f"{args.timeout_seconds}s",
                        "max_retries": args.max_retries,
                        "containers": [{
                            "image": args.image.reference,
                            "args": job_args,
                            "envs": job_envs,
                            "resources": {"limits": {"cpu": args.cpu, "memory": args.memory}},
                        }],
                    },
                },
                opts=pulumi.ResourceOptions(parent=self,
                                            depends_on=[*apis, self.repository]))
            gcp.cloudrunv2.JobIamMember(
                f"{name}-{key}-invoker", project=project, location=args.region,
                name=job.name, role="roles/run.invoker", member=scheduler_member, opts=child)
            uri = pulumi.Output.concat("https://run.googleapis.com/v2/projects/", project,
                                       "/locations/", args.region, "/jobs/", job.name, ":run")
            self.schedulers[key] = gcp.cloudscheduler.Job(
                f"{name}-{key}-trigger", project=project, region=args.region,
                name=f"{job_name}-trigger",
                description=f"{what}, {args.offset_minutes} min after the "
                            "primary's window starts; a no-op if the primary already ran",
                schedule=standby_cron(dc, args.offset_minutes), time_zone="Etc/UTC",
                retry_config={"retry_count": args.max_retries},
                http_target={"uri": uri, "http_method": "POST",
                             "oauth_token": {"service_account_email": self.scheduler_sa.email,
                                             "scope": RUN_SCOPE}},
                opts=after_apis)
            self.jobs[key] = job

        self.job_names = {k: j.name for k, j in self.jobs.items()}
        self.scheduler_names = {k: s.name for k, s in self.schedulers.items()}
        self.repository_id = self.repository.repository_id
        self.service_account_email = self.job_sa.email
        self.register_outputs({"job_names": self.job_names,
                               "scheduler_names": self.scheduler_names,
                               "repository_id": self.repository_id,
                               "service_account_email": self.service_account_email})
