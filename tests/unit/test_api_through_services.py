"""The API and the namespaces reach the core through the services the bootstrap hands over
(views, decisions ...), never through the engine."""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def attribute_uses(path: Path, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr == name]


def test_no_blueprint_or_namespace_reaches_into_the_engine():
    edge = [*(APP / "api").glob("*.py"), *(APP / "realtime").glob("*.py")]
    uses = {str(path.relative_to(APP)): lines for path in edge if (lines := attribute_uses(path, "engine"))}
    assert uses == {}
