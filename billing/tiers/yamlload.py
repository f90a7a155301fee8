"""YAML with line numbers: mappings and sequences remember where each value came from, so that a
validation error can name the file, the line and the field."""

from __future__ import annotations

import yaml


class LineDict(dict):
    line: int = 0
    lines: dict

    def line_of(self, key) -> int:
        return self.lines.get(key, self.line)


class LineList(list):
    line: int = 0
    lines: list


MAX_DEPTH = 40  # a catalog nests about six levels; an alias cycle (`a: &a [*a]`) nests forever
MAX_NODES = 200_000  # aliases are copied where used: nested ones would multiply ("billion laughs")


def _refuse(node, problem: str):
    raise yaml.MarkedYAMLError(problem=problem, problem_mark=node.start_mark)


def _build(node, constructor, budget: list, depth=0):
    budget[0] -= 1
    if budget[0] < 0:
        _refuse(node, f"has more than {MAX_NODES} values (aliases included)")
    if depth > MAX_DEPTH:
        _refuse(node, f"nests deeper than {MAX_DEPTH} levels (or an alias refers to itself)")
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                _refuse(key_node, "a key must be a plain value, not a list or mapping")
            key = constructor.construct_object(key_node, deep=True)
            out[key] = _build(value_node, constructor, budget, depth + 1)
            out.lines[key] = value_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LineList(_build(item, constructor, budget, depth + 1) for item in node.value)
        out.line, out.lines = node.start_mark.line + 1, [item.start_mark.line + 1 for item in node.value]
        return out
    return constructor.construct_object(node, deep=True)


def load(text: str):
    """Parse one YAML document (safe tags only). Raises yaml.YAMLError with a mark on bad syntax,
    on nesting deeper than MAX_DEPTH and on an alias that refers to itself."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # the composer recurses once per level of nesting
            raise yaml.YAMLError(f"nests deeper than {MAX_DEPTH} levels") from None
        return _build(node, loader, [MAX_NODES]) if node is not None else None
    finally:
        loader.dispose()
