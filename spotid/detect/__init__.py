"""spotid.detect stage."""
