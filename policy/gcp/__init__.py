"""The rules' checks for GCP resources, one module per service."""
