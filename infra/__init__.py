"""The vo2max-dr Pulumi program. ``program.py`` declares the stack (run by the project root's
``__main__.py``); ``config.py`` is the only reader of stack config."""
