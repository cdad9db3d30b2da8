"""`python -m generator`: the same as the `msctl` command (for tests and source checkouts)."""

from generator.cli import entry

entry()
