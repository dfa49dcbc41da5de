"""An import-linter contract that no module of a package takes part in an import cycle.

import-linter's own `acyclic_siblings` judges whole packages (any import from `deploys` to
`builder` and any back make a cycle); this one judges files, as Python does: a cycle is a
module that, through the modules it imports, ends up importing itself. Imports made inside
functions count: they only hide a cycle from the interpreter, not from a reader.
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        inside = {
            module
            for container in self.containers  # type: ignore[attr-defined]
            for module in graph.find_descendants(container) | {container}
        }
        cycles = _cycles(graph, inside)
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("These modules import each other, directly or through the others:")
            output.new_line()
            for module in cycle:
                output.print_error(f"- {module}", bold=False)
            output.new_line()


def _cycles(graph: ImportGraph, inside: set[str]) -> list[list[str]]:
    """The strongly connected groups of more than one module among INSIDE (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & inside):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(inside) + 100))
    try:
        for module in sorted(inside):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)
