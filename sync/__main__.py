"""`python -m sync`: exactly the `msctl` command (the CLI boundary, `sync.cli:entry`)."""

from sync.cli import entry

if __name__ == "__main__":
    entry()
