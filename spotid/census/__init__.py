"""spotid.census stage."""
