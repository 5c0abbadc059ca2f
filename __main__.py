"""The Pulumi program's entry point (``Pulumi.yaml`` has no ``main``, so Pulumi runs this file
from the project root). The program itself is :mod:`infra.program`.

Why the root and not ``infra/``: Pulumi starts the dynamic provider of the Azure immutability
lock (``infra.azure.immutability_lock``) with the program directory as its working directory,
resolves ``virtualenv: .venv`` against it and puts it first on ``sys.path``. From the root that
finds ``.venv``, imports ``infra.azure.immutability_lock`` (the module the provider is pickled
by reference to), and keeps ``infra/`` off ``sys.path``, where ``infra/packaging.py`` and
``infra/azure/`` would shadow the ``packaging`` and ``azure`` libraries. ``infra`` is a package,
never a path entry.
"""

from infra.program import main

main()
