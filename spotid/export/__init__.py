"""spotid.export stage."""
