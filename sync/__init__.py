"""The in-cluster sync daemon: keeps ModelServings' objects true to their specs."""
