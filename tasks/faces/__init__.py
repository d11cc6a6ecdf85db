"""Faces: detection and embedding backends, the tracker, the faces stage.

``BACKENDS`` names the backends ``backends.load_backend`` loads, the default first. It lives
here, away from the models' imports (cv2, onnxruntime), so the command line offers the
choices without loading them.
"""

BACKENDS = ("yunet-sface", "insightface")
