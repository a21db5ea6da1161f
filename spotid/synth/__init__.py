"""spotid.synth stage."""
