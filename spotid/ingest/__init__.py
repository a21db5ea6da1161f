"""spotid.ingest stage."""
