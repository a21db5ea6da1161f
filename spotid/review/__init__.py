"""spotid.review: the browser page where a biologist confirms, rejects, creates and merges individuals.

- :mod:`spotid.review.queue` — read side: the queue order (most uncertain first) and each item's
  crops, candidates, best references and stored keypoint evidence;
- :mod:`spotid.review.decisions` — write side: :class:`~spotid.review.decisions.Reviewer` applies
  decisions in transactions with an audit record, optimistic locking and exact undo;
- :mod:`spotid.review.browse` / :mod:`spotid.review.census_view` — individual pages, census dashboard;
- :mod:`spotid.review.app` — the FastAPI app (``create_app``), served on 127.0.0.1 by ``spotid review``;
- :mod:`spotid.review.demo` — a small populated catalog for tests, screenshots and ``--demo``.

Serving never reads embeddings, keypoints or descriptors and never imports torch or OpenCV.
"""
