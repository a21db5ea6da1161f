"""Each catalog table's SQL, in one module per table (the catalog contract, ``docs/catalog.md``).

Stages never write SQL text: they call the functions here, which take a :class:`~spotid.catalog.Catalog`
(or its ``sqlite3.Connection`` inside a transaction) first and return typed rows (:mod:`spotid.types`) or
plain values. ``tests/test_catalog_sql.py`` checks that no module outside ``spotid/catalog/`` holds SQL.

Which module holds a statement:
- a write (INSERT, UPDATE, DELETE) lives in the module of the table it writes;
- a read lives in the module of the table whose rows it returns (its main ``FROM`` table), even when it
  joins others: "the sightings of an individual with their boxes and photos" is in :mod:`.sightings`.

| module | tables |
|---|---|
| :mod:`.deployments` | deployments |
| :mod:`.media` | media, sequences, ingest_failures |
| :mod:`.detections` | detections, detection_status |
| :mod:`.crops` | crops, crop_local_features |
| :mod:`.individuals` | individuals, flank_links |
| :mod:`.sightings` | sightings, match_candidates |
| :mod:`.reviews` | review_decisions |

``runs``, ``settings`` and ``schema_migrations`` stay in :class:`spotid.catalog.Catalog` (``start_run``,
``get_setting``, ``migrate``). Shared SQL fragments (``flank_seen_sql``, ``set_aside_sql``) stay in
:mod:`spotid.catalog`.
"""

# table -> module name in this package; tests/test_catalog_sql.py checks writes against it
TABLE_MODULES = {
    "deployments": "deployments",
    "media": "media", "sequences": "media", "ingest_failures": "media",
    "detections": "detections", "detection_status": "detections",
    "crops": "crops", "crop_local_features": "crops",
    "individuals": "individuals", "flank_links": "individuals",
    "sightings": "sightings", "match_candidates": "sightings",
    "review_decisions": "reviews",
    "runs": "__init__", "settings": "__init__", "schema_migrations": "__init__",
}
