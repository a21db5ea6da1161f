"""spotid.review stage."""
