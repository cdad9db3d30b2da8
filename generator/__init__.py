"""Generator for Kthena ModelServing workloads.

Pipeline: parse + default + validate (model, schema, validation) -> expand (naming, revision,
expand) -> render through the templates (templating, render) -> output. Pure functions of their
inputs; only the CLI does I/O.
"""

__version__ = "0.1.0"
