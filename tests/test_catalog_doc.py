"""docs/catalog.md is the catalog's contract: its tables and columns must be the ones a freshly migrated
catalog has. A migration that adds, drops or changes a column fails here until the page says so.

The page's format (parsed below): a ``### `table` `` heading, then a markdown table whose header starts
``| column | type | constraints |``. The constraints cell states ``PK``, ``NOT NULL``, ``UNIQUE`` (one
column), ``DEFAULT x`` (as PRAGMA table_info shows it) and ``FK table(column)`` with ``ON DELETE ...`` when
the action is not NO ACTION; other words in it (CHECK ...) are for people.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from spotid.catalog import Catalog, migrations

DOC = Path(__file__).resolve().parent.parent / "docs" / "catalog.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FK = re.compile(r"\bFK\s+(\w+)\((\w+)\)(?:\s+ON DELETE\s+(CASCADE|SET NULL|SET DEFAULT|RESTRICT))?")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _sections(text: str) -> list[tuple[int, str, list[str]]]:
    """(heading level, heading text, body lines) of every markdown heading."""
    out: list[tuple[int, str, list[str]]] = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            out.append((len(m.group(1)), m.group(2), []))
        elif out:
            out[-1][2].append(line)
    return out


def _table(lines: list[str], first_header: str) -> list[list[str]] | None:
    """Rows (cells) of the first markdown table in ``lines`` whose header's first cell is ``first_header``."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|") and _cells(line)[0].lower() == first_header:
            rows = []
            for row in lines[i + 2:]:  # skip the |---| line
                if not row.lstrip().startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    return None


def documented_schema(text: str) -> dict[str, dict[str, tuple[str, str]]]:
    """{table: {column: (type, constraints)}} from the page's ``### `table` `` sections."""
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    for level, heading, body in _sections(text):
        rows = _table(body, "column") if level == 3 else None
        if rows is None:
            continue
        name = heading.strip("` ")
        tables[name] = {r[0].strip("`"): (r[1].strip("`"), r[2]) for r in rows if len(r) >= 3}
    return tables


def actual_schema(conn: sqlite3.Connection) -> dict[str, dict[str, tuple[str, str]]]:
    """{table: {column: (declared type, constraints in the page's words)}} of a live database."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for t in names:
        fks = {r[3]: (r[2], r[4], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({t})")}
        unique = set()
        for idx in conn.execute(f"PRAGMA index_list({t})"):
            cols = [c[2] for c in conn.execute(f"PRAGMA index_info({idx[1]})")]
            if idx[2] and idx[3] == "u" and len(cols) == 1:
                unique.add(cols[0])
        cols = {}
        for _cid, col, ctype, notnull, dflt, pk in conn.execute(f"PRAGMA table_info({t})"):
            words = []
            if pk:
                words.append("PK")
            if notnull:
                words.append("NOT NULL")
            if col in unique:
                words.append("UNIQUE")
            if dflt is not None:
                words.append(f"DEFAULT {dflt}")
            if col in fks:
                ref, to, on_delete = fks[col]
                words.append(f"FK {ref}({to})" + (f" ON DELETE {on_delete}" if on_delete != "NO ACTION" else ""))
            cols[col] = (ctype.upper(), ", ".join(words))
        out[t] = cols
    return out


def _claims(constraints: str) -> dict:
    """The checked facts a constraints cell states."""
    fk = _FK.search(constraints)
    dflt = re.search(r"\bDEFAULT\s+('[^']*'|[^\s,]+)", constraints)
    return {
        "PK": bool(re.search(r"\bPK\b", constraints)),
        "NOT NULL": "NOT NULL" in constraints,
        "UNIQUE": bool(re.search(r"\bUNIQUE\b", constraints)),
        "DEFAULT": dflt.group(1) if dflt else None,
        "FK": (fk.group(1), fk.group(2), fk.group(3) or "NO ACTION") if fk else None,
    }


def compare(documented: dict, actual: dict) -> list[str]:
    """Every difference between the page and the database, one line each, naming table and column."""
    problems = []
    for t in sorted(set(actual) - set(documented)):
        problems.append(f"table {t} exists but docs/catalog.md has no '### `{t}`' section with a column table")
    for t in sorted(set(documented) - set(actual)):
        problems.append(f"table {t} is documented but a fresh catalog has no such table")
    for t in sorted(set(documented) & set(actual)):
        doc, act = documented[t], actual[t]
        for c in act:
            if c not in doc:
                problems.append(f"column {t}.{c} exists but is not documented")
        for c in doc:
            if c not in act:
                problems.append(f"column {t}.{c} is documented but does not exist")
        for c in [c for c in act if c in doc]:
            (dtype, dcons), (atype, acons) = doc[c], act[c]
            if dtype.upper() != atype:
                problems.append(f"column {t}.{c}: documented type {dtype!r}, actual {atype!r}")
            want, got = _claims(acons), _claims(dcons)
            for k in want:
                if want[k] != got[k]:
                    problems.append(f"column {t}.{c}: {k} is {want[k]!r} in the schema but {got[k]!r} in the page "
                                    f"(write the constraints cell as: {acons or '(empty)'})")
    return problems


def test_page_matches_a_freshly_migrated_catalog(db_path):
    documented = documented_schema(DOC.read_text(encoding="utf-8"))
    with Catalog(db_path) as cat:
        actual = actual_schema(cat.conn)
    assert len(actual) >= 15, sorted(actual)  # the parse below must have something to compare
    problems = compare(documented, actual)
    assert not problems, "docs/catalog.md is out of date with the migrations:\n  " + "\n  ".join(problems)


def test_page_lists_every_shipped_migration():
    text = DOC.read_text(encoding="utf-8")
    rows = next((r for lvl, h, body in _sections(text) if (r := _table(body, "migration")) is not None), None)
    assert rows is not None, "docs/catalog.md needs a '| migration | what it does |' table"
    listed = [r[0].strip("`") for r in rows]
    shipped = [name for name, _ in migrations()]
    assert listed == shipped, f"docs/catalog.md lists migrations {listed}, spotid ships {shipped}"


def test_compare_names_every_difference():
    """The checker itself, on a two-table schema with known differences."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE, x REAL);"
        "CREATE TABLE c (k TEXT PRIMARY KEY);")
    page = """
### `a`
| column | type | constraints | meaning |
|---|---|---|---|
| id | INTEGER | PK | row |
| name | TEXT | NOT NULL, UNIQUE | name |
| n | INTEGER | NOT NULL, DEFAULT 0 | count |

### `b`
| column | type | constraints | meaning |
|---|---|---|---|
| id | INTEGER | PK | row |
| a_id | INTEGER | FK a(id) | no ON DELETE written |
| x | TEXT | | wrong type |
| gone | TEXT | | not in the schema |

### `z`
| column | type | constraints | meaning |
|---|---|---|---|
| q | TEXT | | no such table |

### Not a schema table
| key | value |
|---|---|
| x | y |
"""
    problems = compare(documented_schema(page), actual_schema(conn))
    assert problems == [
        "table c exists but docs/catalog.md has no '### `c`' section with a column table",
        "table z is documented but a fresh catalog has no such table",
        "column b.gone is documented but does not exist",
        "column b.a_id: FK is ('a', 'id', 'CASCADE') in the schema but ('a', 'id', 'NO ACTION') in the page "
        "(write the constraints cell as: FK a(id) ON DELETE CASCADE)",
        "column b.x: documented type 'TEXT', actual 'REAL'",
    ]
    # and a page that says everything right has nothing to report
    fixed = (page.replace("| FK a(id) |", "| FK a(id) ON DELETE CASCADE |").replace("| x | TEXT |", "| x | REAL |")
             .replace("| gone | TEXT | | not in the schema |\n", "")
             .replace("### `z`", "### `c`").replace("| q | TEXT | |", "| k | TEXT | PK |"))
    assert compare(documented_schema(fixed), actual_schema(conn)) == []


def _table_module_users() -> dict[str, set[str]]:
    """module path under spotid/ (outside spotid/catalog/) -> the spotid.catalog.tables modules it imports."""
    import ast

    pkg = DOC.parent.parent / "spotid"
    users: dict[str, set[str]] = {}
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith("catalog/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "spotid.catalog.tables":
                users.setdefault(rel, set()).update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spotid.catalog.tables."):
                users.setdefault(rel, set()).add(node.module.rsplit(".", 1)[1])
    return users


def test_the_sql_map_names_every_caller_of_the_table_modules():
    """The section 'Where the SQL lives' lists each module that reaches the catalog through spotid/catalog/tables and the
    table modules it calls, exactly as the imports say (so the map cannot drift from the code)."""
    body = next((b for _, h, b in _sections(DOC.read_text(encoding="utf-8")) if h == "Where the SQL lives"), None)
    assert body is not None, "docs/catalog.md needs a '## Where the SQL lives' section"
    rows = _table(body, "module")
    assert rows, "'Where the SQL lives' needs a table whose header starts with '| module |'"
    documented = {r[0].strip("`"): {m.strip(" `") for m in r[1].split(",") if m.strip()} for r in rows}
    actual = _table_module_users()
    wrong = [f"{m}: page says {sorted(documented.get(m, ()))}, code imports {sorted(actual.get(m, ()))}"
             for m in sorted(set(documented) | set(actual)) if documented.get(m) != actual.get(m)]
    assert not wrong, "docs/catalog.md 'Where the SQL lives' is out of date:\n" + "\n".join(wrong)
