"""GCS secondary store: Cloud KMS, bucket, lifecycle, service accounts, workload identity."""
