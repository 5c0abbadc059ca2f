"""Alarms and where they go: an SNS topic encrypted with the backup CMK, its email subscription,
and CloudWatch alarms on

- each function's errors (a backup, status check or drill that failed after its retries),
- each dead-letter queue holding a message (an invocation that never ran or never succeeded),
- ``BackupAgeSeconds`` above the data class's RPO (seconds, from the stack file),
- ``BackupAgeSeconds`` of each application source (code, config, assets, logs: dimension
  ``Source``) above its class's RPO: a source whose schedule stopped or whose runs keep
  failing alarms like a data class, even when no function reports an error,
- ``ReplicaMismatch`` above zero (the clouds disagree on a backup).

The last two come from the status function's CloudWatch embedded metric format (EMF) lines:
namespace :data:`METRIC_NAMESPACE`, one datapoint per data class with the single dimension
``DataClass``. A status function that stops reporting is itself an alarm: missing age data is
treated as breaching.

An age alarm needs :data:`BACKUP_AGE_BREACHES_TO_ALARM` consecutive breaching checks, while its
threshold stays exactly the RPO: one late backup (a dump slower than the status check's offset,
a retried schedule) is one breaching datapoint and clears at the next check; a backup that is
really missing breaches every check and alarms one status interval later.

The chat webhook is not an SNS subscription (chat webhooks cannot confirm one); the status
function posts to it, reading the URL from Secrets Manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from vo2dr import metrics
from vo2dr.metrics import METRIC_NAMESPACE

from infra.aws.policies import document, statement

# The metric contract with the job's status command (vo2dr status, EMF): its names are
# imported from the job (vo2dr.metrics), so the alarms cannot drift from the metrics.
BACKUP_AGE_METRIC = metrics.BACKUP_AGE
REPLICA_MISMATCH_METRIC = metrics.REPLICA_MISMATCH
DATA_CLASS_DIMENSION = metrics.DATA_CLASS
SOURCE_DIMENSION = metrics.SOURCE
CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
# Consecutive breaching status checks before a BackupAgeSeconds alarm fires (see above).
BACKUP_AGE_BREACHES_TO_ALARM = 2


@dataclass(frozen=True)
class AlertsArgs:
    account_id: str
    topic_name: str
    key_arn: pulumi.Input[str]
    alert_email: str
    # Seconds per data class: the alarm fires when the newest backup is older than this.
    rpo_seconds: Mapping[str, int]
    # Evaluation period of every alarm, in seconds: the status check's interval, so each
    # period holds one status datapoint.
    period_seconds: int
    function_names: Mapping[str, pulumi.Input[str]]  # job -> function name
    dlq_names: Mapping[str, pulumi.Input[str]]  # label -> queue name
    name_prefix: str  # "vo2dr-<env>"
    tags: Mapping[str, str] = field(default_factory=dict)
    # Seconds per application source (its class's RPO), alarmed like rpo_seconds.
    source_rpo_seconds: Mapping[str, int] = field(default_factory=dict)


class Alerts(pulumi.ComponentResource):
    """Outputs: ``topic_arn``, ``alarm_names`` (key -> name)."""

    def __init__(self, name: str, args: AlertsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.topic = aws.sns.Topic(f"{name}-topic", name=args.topic_name,
                                   kms_master_key_id=args.key_arn, tags=tags, opts=child)
        # Only this account's alarms may publish (the key policy lets CloudWatch encrypt).
        aws.sns.TopicPolicy(f"{name}-topic-policy", arn=self.topic.arn, policy=document(
            statement("AlarmsOfThisAccountPublish", ["sns:Publish"], self.topic.arn,
                      principal={"Service": CLOUDWATCH_SERVICE},
                      condition={"StringEquals": {"aws:SourceAccount": args.account_id}}),
            statement("DenyInsecureTransport", ["sns:Publish"], self.topic.arn, effect="Deny",
                      principal={"AWS": "*"},
                      condition={"Bool": {"aws:SecureTransport": "false"}}),
        ), opts=child)
        # Email needs a one-time confirmation click by the on-call address after `pulumi up`.
        aws.sns.TopicSubscription(f"{name}-email", topic=self.topic.arn, protocol="email",
                                  endpoint=args.alert_email, opts=child)
        actions = [self.topic.arn]
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}

        def alarm(key: str, breaches: int = 1, **kwargs) -> None:
            self.alarms[key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{key}", name=f"{args.name_prefix}-{key}", alarm_actions=actions,
                ok_actions=actions, evaluation_periods=breaches, datapoints_to_alarm=breaches,
                period=args.period_seconds, tags=tags, opts=child, **kwargs)

        for job, fname in sorted(args.function_names.items()):
            alarm(f"{job}-errors", namespace="AWS/Lambda", metric_name="Errors",
                  dimensions={"FunctionName": fname}, statistic="Sum",
                  comparison_operator="GreaterThanThreshold", threshold=0,
                  treat_missing_data="notBreaching",
                  alarm_description=f"vo2dr {job} function failed")
        for label, qname in sorted(args.dlq_names.items()):
            alarm(f"{label}-dlq", namespace="AWS/SQS",
                  metric_name="ApproximateNumberOfMessagesVisible",
                  dimensions={"QueueName": qname}, statistic="Maximum",
                  comparison_operator="GreaterThanThreshold", threshold=0,
                  treat_missing_data="notBreaching",
                  alarm_description=f"vo2dr {label} dead-letter queue holds failed invocations")
        def age_alarm(key: str, what: str, dimensions: dict[str, str], rpo: int) -> None:
            alarm(key, breaches=BACKUP_AGE_BREACHES_TO_ALARM, namespace=METRIC_NAMESPACE,
                  metric_name=BACKUP_AGE_METRIC, dimensions=dimensions,
                  statistic="Maximum", comparison_operator="GreaterThanThreshold",
                  threshold=rpo, treat_missing_data="breaching",
                  alarm_description=f"newest {what} backup is older than its RPO ({rpo} s) at "
                                    f"{BACKUP_AGE_BREACHES_TO_ALARM} checks in a row, or the "
                                    "status check stopped reporting")

        for source, rpo in sorted(args.source_rpo_seconds.items()):
            age_alarm(f"source-{source}-backup-age", f"{source} source",
                      {SOURCE_DIMENSION: source}, rpo)
        for cls, rpo in sorted(args.rpo_seconds.items()):
            age_alarm(f"{cls}-backup-age", cls, {DATA_CLASS_DIMENSION: cls}, rpo)
            alarm(f"{cls}-replica-mismatch", namespace=METRIC_NAMESPACE,
                  metric_name=REPLICA_MISMATCH_METRIC, dimensions={DATA_CLASS_DIMENSION: cls},
                  statistic="Maximum", comparison_operator="GreaterThanThreshold", threshold=0,
                  treat_missing_data="notBreaching",
                  alarm_description=f"the clouds disagree on the newest {cls} backup")
        self.topic_arn = self.topic.arn
        self.alarm_names = {k: a.name for k, a in self.alarms.items()}
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})
