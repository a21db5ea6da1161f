"""spotid.census stage: from identified sightings to the number the park reports.

- :mod:`spotid.census.estimators` / :mod:`spotid.census.mixture`: closed-population estimators as
  in program CAPTURE and ``secr::closedN`` (M0, Mt, Mb, Mh Chao, Mh jackknife, Mh 2-point mixture,
  Mh beta-binomial) with SE, log-normal CI, logLik and AICc; pure numpy/scipy.
- :mod:`spotid.census.registry`: the estimator seam (``CaptureData`` in, ``Estimate`` out), the one
  registry of models and ``estimate_all``.
- :mod:`spotid.census.secr` (+ ``secr_mask``, ``secr_io``): spatially explicit capture-recapture by
  maximum likelihood as R's ``secr.fit`` (multi-catch, proximity, count; HN/HR/HHN/HHR; usage;
  secr's trapbuffer mask or a habitat polygon): density per ha and per 100 km²; registered as the
  spatial model "SECR"; ``spotid census secr CAPTURES TRAPS``.
- :mod:`spotid.census.history`: capture-history CSV files (0/1, or two-flank 1 = left, 2 = right)
  and the two-flank bounds; ``spotid census estimate``.
- :mod:`spotid.census.census`: ``Census(config)(catalog) -> CensusResult``: events, occasions,
  effort, MNA, flank links (:mod:`spotid.census.linking`), new vs resighted, estimates.
- :mod:`spotid.census.outputs`: the CSV/JSON tables and secr-ready files of ``spotid census --out``.
"""
