"""spotid.export stage: the catalog in the field's formats.

- :mod:`spotid.export.camtrapdp`: Camtrap DP 1.0.2 package (``spotid export camtrapdp``), validated
  offline by :mod:`spotid.export.validate`;
- :mod:`spotid.export.mdjson_export`: MegaDetector batch JSON 1.6 of the catalog's detections;
- :mod:`spotid.export.report`: the census report (HTML + PNG plots).
"""
