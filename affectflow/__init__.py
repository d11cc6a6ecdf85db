"""affectflow: per-frame valence/arousal for every face in a video corpus.

One namespaced package. Its subpackages are the design card's top-level folders,
linked here so the repository keeps its layout and the installed package keeps one name:

- ``affectflow.flows``  Prefect flows, the per-video DAG, the ``affectflow`` command line
- ``affectflow.tasks``  the stages (media, faces, speech, features, emotions), storage, query
- ``affectflow.model``  RCMA in pure PyTorch (no I/O)
- ``affectflow.sql``    the DuckDB views and example queries (package data)
"""
