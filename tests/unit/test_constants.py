"""One definition per constant: no named constant, and no table of names, is written twice in app/.

Read from the source (AST), so a second copy of a constant, or a Literal that
spells out a vocabulary a service already defines, fails here.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
# A table of names: a tuple, list, set or Literal of at least this many strings (a dict's
# keys are a record's fields more often than a vocabulary, and are not compared).
TABLE_SIZE = 3


def modules():
    for path in sorted(APP.rglob("*.py")):
        yield path.relative_to(APP.parent).as_posix(), ast.parse(path.read_text(), str(path))


def literal(node: ast.AST):
    """The value of a constant expression (numbers, strings, their tuples), else None."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def string_table(value) -> frozenset | None:
    if isinstance(value, (tuple, list, set, frozenset)) and len(value) >= TABLE_SIZE \
            and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def test_no_named_constant_is_defined_in_two_modules():
    """The same name with the same value in two modules is one constant written twice."""
    where = defaultdict(list)
    for module, tree in modules():
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
            for target in targets:
                value = literal(node.value)
                if isinstance(target, ast.Name) and target.id.isupper() and value is not None:
                    where[target.id, repr(value)].append(module)
    assert {name: places for (name, _), places in where.items() if len(places) > 1} == {}


def test_no_table_of_names_is_spelled_out_twice():
    """Vocabularies (states, kinds, levels ...) are written once; a Literal or a check reads that one."""
    where = defaultdict(set)
    for module, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
                table = string_table(literal(node.slice))
            elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                table = string_table(literal(node))
            else:
                continue
            if table is not None:
                where[table].add(module)
    twice = {tuple(sorted(table)): sorted(places) for table, places in where.items() if len(places) > 1}
    assert twice == {}
