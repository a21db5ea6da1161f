"""spotid.train stage."""
