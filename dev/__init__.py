"""Developer tooling: local servers, seed data, demo. Never shipped in the Lambda artifact."""
