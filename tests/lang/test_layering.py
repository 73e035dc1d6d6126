"""The language and the simulator depend on each other one way only: the language
reads the world's schema (spec), the simulator never reads the language, except
the dataset writer (captions) and the `tenku world preview` command (the parser)."""

import ast
from pathlib import Path

import tenku

SRC = Path(tenku.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every tenku module a file imports, at top level or inside functions
    (``from tenku.lang import vocab`` counts as ``tenku.lang.vocab``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if (SRC.parent / node.module.replace(".", "/")).is_dir():  # a package: the names are modules
                out.update(f"{node.module}.{a.name}" for a in node.names)
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("tenku.")}


def test_language_imports_only_the_world_spec():
    for path in sorted((SRC / "lang").glob("*.py")):
        world = {m for m in _imports(path) if m.startswith("tenku.world")}
        assert world <= {"tenku.world.spec"}, (path.name, world)
    assert "tenku.lang.vocab" in _imports(SRC / "lang" / "lexicon.py")  # the walk sees package imports


def _lang(mods: set[str]) -> set[str]:
    return {m for m in mods if m.split(".")[:2] == ["tenku", "lang"]}


def test_simulator_does_not_import_the_language():
    allowed = {"dataset.py": {"tenku.lang.captions"}, "cli.py": {"tenku.lang.parse"}}
    for path in sorted((SRC / "world").glob("*.py")):
        assert _lang(_imports(path)) == allowed.get(path.name, set()), path.name
