"""The ``mspmon`` command line."""
