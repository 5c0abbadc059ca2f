"""Checks that read resources of every cloud at once (lifecycle, intraday tier, schedules,
stores)."""
