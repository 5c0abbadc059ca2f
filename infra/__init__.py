"""The vo2max-dr Pulumi program. ``__main__.py`` is the entry point; ``config.py`` is the only
reader of stack config."""
