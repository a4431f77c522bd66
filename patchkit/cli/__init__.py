"""The ``patchkit`` command line: one module per sub-command."""
