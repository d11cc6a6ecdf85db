"""People across the corpus: identity embeddings per track and voice, and one person id for each individual.

``identity.py`` makes the embeddings a video's run keeps (biometric data: docs/people.md),
``link.py`` assigns them to people (pure functions on arrays), ``index.py`` finds neighbours,
``snapshot.py`` reads and writes the output root's people tables through the store.
"""
