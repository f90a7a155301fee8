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


def _build(node, constructor):
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            out[key] = _build(value_node, constructor)
            out.lines[key] = value_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LineList(_build(item, constructor) for item in node.value)
        out.line, out.lines = node.start_mark.line + 1, [item.start_mark.line + 1 for item in node.value]
        return out
    return constructor.construct_object(node, deep=True)


def load(text: str):
    """Parse one YAML document (safe tags only). Raises yaml.YAMLError with a mark on bad syntax."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return _build(node, loader) if node is not None else None
    finally:
        loader.dispose()
