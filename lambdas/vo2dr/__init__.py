"""vo2dr: streamed, encrypted, multi-cloud PostgreSQL backups for the VO2Max Training App."""

__version__ = "0.1.0"
