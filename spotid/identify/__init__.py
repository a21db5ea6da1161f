"""spotid.identify stage."""
