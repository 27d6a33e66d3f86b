"""What a Python module or notebook does, read from its syntax tree (never imported or run).

For one file, :func:`python_facts` (or :func:`notebook_facts`) gives its imports, the calls it
makes (names resolved through its imports: ``import mlflow as m; m.log_metric`` is
``mlflow.log_metric``), the keyword arguments it passes, its decorators, the identifiers and
string constants it uses, the web routes it declares and its test functions, each with the
first place it occurs.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import nbformat

#: A place in a file: (line, notebook cell number or None).
Loc = tuple[int, int | None]

#: Decorator or method names that declare a web route when their first argument is a path
#: (FastAPI/Starlette ``@app.get("/x")``, Flask ``@app.route("/x")``, ``add_api_route``).
ROUTE_METHODS = frozenset(
    {
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "options",
        "route",
        "api_route",
        "websocket",
        "add_api_route",
        "add_url_rule",
        "add_route",
    }
)

_CONTEXTS = frozenset({ast.Load, ast.Store, ast.Del})
_MAGIC = re.compile(r"^\s*[%!?]")
_MAX_STRING = 300


@dataclass
class PyFacts:
    """Facts of one Python file or notebook; each maps a name to where it first occurs."""

    imports: dict[str, Loc] = field(default_factory=dict)
    calls: dict[str, Loc] = field(default_factory=dict)
    keywords: dict[str, Loc] = field(default_factory=dict)
    decorators: dict[str, Loc] = field(default_factory=dict)
    names: dict[str, Loc] = field(default_factory=dict)
    strings: dict[str, Loc] = field(default_factory=dict)
    routes: dict[str, Loc] = field(default_factory=dict)
    tests: dict[str, Loc] = field(default_factory=dict)


class SourceSyntaxError(ValueError):
    """The file is not valid Python (or not a notebook); the message says where."""


def python_facts(source: str, *, cell: int | None = None, into: PyFacts | None = None) -> PyFacts:
    """Facts of one Python source.

    Raises:
        SourceSyntaxError: the source does not parse (line and reason in the message).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        raise SourceSyntaxError(f"not valid Python ({where}{getattr(exc, 'msg', exc)})") from None
    except (RecursionError, MemoryError):
        raise SourceSyntaxError("not read: nested too deeply to parse") from None
    facts = into if into is not None else PyFacts()
    try:
        _Collector(facts, cell).visit(tree)
    except RecursionError:
        raise SourceSyntaxError("not read: nested too deeply to walk") from None
    return facts


def notebook_facts(text: str) -> PyFacts:
    """Facts of a Jupyter notebook's code cells (IPython magics and shell lines left out).

    Raises:
        SourceSyntaxError: the text is not a notebook (not JSON, or not nbformat).
    """
    try:
        with warnings.catch_warnings():  # e.g. MissingIDFieldWarning: not the user's concern
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises JSON, validation and version errors alike
        raise SourceSyntaxError(
            f"not a notebook ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    facts = PyFacts()
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        lines = str(cell.get("source", "")).splitlines()
        code = "\n".join("pass" if _MAGIC.match(line) else line for line in lines)
        try:
            python_facts(code, cell=number, into=facts)
        except SourceSyntaxError:
            continue  # one broken cell does not hide the others
    return facts


class _Collector(ast.NodeVisitor):
    # NodeVisitor's own dispatch builds a method name per node; on large trees these two
    # overrides (a method cache, and not descending into Load/Store/Del) save a tenth.
    _methods: ClassVar[dict[type[ast.AST], Callable[[_Collector, Any], None]]] = {}

    def __init__(self, facts: PyFacts, cell: int | None) -> None:
        self.facts = facts
        self.cell = cell
        self.aliases: dict[str, str] = {}

    def visit(self, node: ast.AST) -> None:
        method = self._methods.get(node.__class__)
        if method is None:
            found: Callable[[_Collector, Any], None] = getattr(
                type(self), "visit_" + node.__class__.__name__, type(self).generic_visit
            )
            self._methods[node.__class__] = method = found
        method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        visit = self.visit
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        visit(item)
            elif isinstance(value, ast.AST) and value.__class__ not in _CONTEXTS:
                visit(value)

    def _add(self, table: dict[str, Loc], key: str, node: ast.AST) -> None:
        if key and key not in table:
            table[key] = (getattr(node, "lineno", 1), self.cell)

    # -- imports -------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self.facts.imports, alias.name, node)
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0 and module:
            self._add(self.facts.imports, module, node)
        for alias in node.names:
            full = f"{module}.{alias.name}" if module and node.level == 0 else alias.name
            if node.level == 0 and module:
                self._add(self.facts.imports, full, node)
            self.aliases[alias.asname or alias.name] = full

    # -- calls, decorators, routes -------------------------------------------------------
    def dotted(self, expr: ast.expr) -> str:
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if isinstance(expr, ast.Name):
            parts.append(self.aliases.get(expr.id, expr.id))
        elif isinstance(expr, ast.Call):
            parts.append(self.dotted(expr.func) + "()")
        else:
            parts.append("?")
        return ".".join(reversed(parts))

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        self._add(self.facts.calls, name, node)
        for keyword in node.keywords:
            if keyword.arg:
                self._add(self.facts.keywords, keyword.arg, keyword)
        last = name.rsplit(".", 1)[-1]
        if last in ROUTE_METHODS and "." in name:
            path = _first_string(node)
            if path is not None and path.startswith("/"):
                self._add(self.facts.routes, path, node)
        self.generic_visit(node)

    def _decorated(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            self._add(self.facts.decorators, self.dotted(target), decorator)
        self._add(self.facts.names, node.name, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._decorated(node)
        if node.name.startswith("test"):
            self._add(self.facts.tests, node.name, node)
        for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
            self._add(self.facts.names, arg.arg, arg)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._decorated(node)
        for base in node.bases:
            self._add(self.facts.names, self.dotted(base), node)
        self.generic_visit(node)

    # -- identifiers and strings ---------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        self._add(self.facts.names, node.id, node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._add(self.facts.names, node.attr, node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and len(node.value) <= _MAX_STRING:
            self._add(self.facts.strings, node.value, node)


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    for keyword in node.keywords:
        if keyword.arg in {"path", "rule"} and isinstance(keyword.value, ast.Constant):
            value = keyword.value.value
            return value if isinstance(value, str) else None
    return None
