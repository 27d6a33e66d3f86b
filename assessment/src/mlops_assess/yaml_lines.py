"""YAML read safely, with the line of every mapping (CI files are judged by ``file:line``)."""

from __future__ import annotations

from typing import Any

import yaml

#: The key under which :func:`load_yaml` records a mapping's first line (1-based).
LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that adds ``__line__`` to every mapping and keeps ``on`` a string."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        # YAML 1.1 reads an unquoted `on:` (GitHub Actions' trigger key) as True.
        if key is True and key_node.value in {"on", "On", "ON"}:
            key = "on"
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except TypeError:  # an unhashable key: keep the document, drop the entry
            continue
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# GitLab's !reference and CloudFormation's !Ref/!Sub/...: keep their value, ignore the tag.
_LineLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else _construct_mapping(loader, node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)
    ),
)


class YamlSyntaxError(ValueError):
    """Not valid YAML; the message has the line and the reason."""


#: Nodes a document may expand to through its aliases (a "billion laughs" of 520 bytes
#: expands to 9^9); CI files and manifests have a few thousand.
MAX_EXPANDED_NODES = 200_000


def load_yaml(text: str) -> Any:
    """The first YAML document of ``text``, every mapping carrying its line as ``__line__``.

    Raises:
        YamlSyntaxError: the text is not YAML (message: "YAML error at line N: reason"), or
            its aliases expand to more than :data:`MAX_EXPANDED_NODES` nodes.
    """
    loader = _LineLoader(text)
    try:
        node = loader.get_node() if loader.check_node() else None
        if node is None:
            return None
        size = _expanded_size(node, {}, set())
        if size > MAX_EXPANDED_NODES:
            raise YamlSyntaxError(
                f"not read: its aliases expand to more than {MAX_EXPANDED_NODES:,} nodes"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlSyntaxError(f"YAML error{where}: {reason}") from None
    except (RecursionError, ValueError, TypeError) as exc:
        if isinstance(exc, YamlSyntaxError):
            raise
        raise YamlSyntaxError(f"YAML error: {type(exc).__name__}") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes ``node`` stands for once every alias is expanded (shared nodes counted each
    time they are used); a node that contains itself counts as too many."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        return MAX_EXPANDED_NODES + 1
    open_.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes, open_)
            if total > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            total += _expanded_size(key_node, sizes, open_) + _expanded_size(
                value_node, sizes, open_
            )
            if total > MAX_EXPANDED_NODES:
                break
    open_.discard(key)
    sizes[key] = total
    return total
