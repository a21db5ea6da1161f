"""Each catalog table's SQL lives in one module (issue 21): stages call ``spotid/catalog/tables/*``.

Static checks on the source, no catalog needed:
- no module outside ``spotid/catalog/`` holds SQL text (a string that starts with an SQL verb, or names a
  catalog table after FROM / JOIN / INTO / UPDATE);
- a table module writes (INSERT / UPDATE / DELETE / REPLACE) only the tables it owns
  (``spotid.catalog.tables.TABLE_MODULES``).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import spotid
from spotid.catalog.tables import TABLE_MODULES

PKG = Path(spotid.__file__).resolve().parent
_TABLES = "|".join(sorted(TABLE_MODULES, key=len, reverse=True))
_VERB = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|CREATE|DROP|ALTER|PRAGMA)\b")
_NAMES_TABLE = re.compile(rf"\b(FROM|JOIN|INTO|UPDATE)\s+({_TABLES})\b")
_WRITES = re.compile(rf"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+({_TABLES})\b")


def _strings(tree: ast.AST):
    """(line, text) of every string literal; an f-string's literal parts joined with '{}'."""
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if id(node) in parts:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                           for v in node.values)
            yield node.lineno, text
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _is_sql(text: str) -> bool:
    return bool(_VERB.match(text) or _NAMES_TABLE.search(text))


def _sql_outside_catalog() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "catalog":
            continue
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            if _is_sql(text):
                out.append(f"{rel}:{line}: {' '.join(text.split())[:80]}")
    return out


def test_no_sql_outside_the_catalog_package():
    found = _sql_outside_catalog()
    assert not found, ("SQL outside spotid/catalog/ (move it to the table's module in spotid/catalog/tables/):\n"
                       + "\n".join(found))


@pytest.mark.parametrize("module", sorted(set(TABLE_MODULES.values()) - {"__init__"}))
def test_table_modules_write_only_their_tables(module):
    path = PKG / "catalog" / "tables" / f"{module}.py"
    owned = {t for t, m in TABLE_MODULES.items() if m == module}
    wrong = [f"{path.name}:{line}: writes {t}" for line, text in _strings(ast.parse(path.read_text()))
             for t in _WRITES.findall(text) if t not in owned]
    assert not wrong, "writes belong in the written table's module:\n" + "\n".join(wrong)


def test_the_checks_see_sql():
    """The detector itself: SQL in plain strings, implicit concatenation and f-strings is found."""
    src = ('a = "SELECT id FROM media"\n'
           'b = ("  UPDATE sightings SET status = ? "\n     "WHERE id = ?")\n'
           'c = f"SELECT {cols} FROM detections d JOIN crops c ON c.detection_id = d.id"\n'
           'd = f" AND s.id IN (SELECT id FROM sightings)"\n'
           'e = "Select a photo from the card"\n')
    hits = [t for _, t in _strings(ast.parse(src)) if _is_sql(t)]
    assert len(hits) == 4
    assert not _is_sql("the media from this card"), "prose naming a table is not SQL"
    assert _WRITES.findall("INSERT OR IGNORE INTO crops (x) VALUES (?)") == ["crops"]
