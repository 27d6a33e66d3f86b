"""No import cycles in any package's ``src/``: every import counts, including those under
``TYPE_CHECKING`` and inside functions (grimp builds the graph from the source).

Run by ``tox -e lint`` (the five packages installed). Exit 1 naming each cycle, 0 otherwise.
"""

from __future__ import annotations

import sys

import grimp

PACKAGES = (
    "duration_core",
    "duration_service",
    "duration_training",
    "duration_deployment",
    "duration_operations",
    "mlops_assess",
)


def cycles(packages: tuple[str, ...] = PACKAGES) -> list[list[str]]:
    """Every import cycle, as ``[a, b, ..., a]``, each listed once (from its first module)."""
    graph = grimp.build_graph(*packages, include_external_packages=False, cache_dir=None)
    found: dict[frozenset[str], list[str]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycle = [importer, *back]
                found.setdefault(frozenset(cycle), cycle)
    return list(found.values())


def main() -> int:
    """Print the cycles; 1 when there is one."""
    found = cycles()
    for cycle in found:
        print("import cycle: " + " -> ".join(cycle))
    print(f"{len(found)} import cycles in {', '.join(PACKAGES)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
