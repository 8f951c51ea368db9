"""Fake Jira and Azure DevOps servers serving a generated SAFe portfolio.

`serve(...)` runs one on a free port for tests; `lpm sandbox serve` (or `python -m sandbox
serve`) runs one from the command line. See `sandbox.server` for the `Sandbox` API.
"""

from sandbox.mutator import Mutation, Mutator
from sandbox.portfolio import Portfolio
from sandbox.server import Sandbox, serve
from sandbox.truth import TruthItem

__all__ = ["Mutation", "Mutator", "Portfolio", "Sandbox", "TruthItem", "serve"]
