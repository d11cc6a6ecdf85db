"""The teacher ensemble: valence/arousal from models that ship offline, one per modality.

It is both the ``teachers`` baseline model of the emotions stage and the source of the
targets the default RCMA checkpoint is distilled from. Per timeline step:

- **face** (FER2013 mini-Xception probabilities p_k): V, A = Σ_k p_k · (v_k, a_k), each
  class placed on the affective circumplex of Russell (1980, "A circumplex model of
  affect", J. Pers. Soc. Psychol. 39(6), Fig. 4, direct circular scaling of 28 affect
  words) at the angle of its emotion word: happy 7.8°, astonished 69.8° (surprise),
  angry 99.8°, afraid 116.0° (fear), sad 207.5°; neutral at the origin. Disgust is not
  among Russell's 28 words: it is placed at 130°, between "annoyed" (123°) and
  "distressed" (138°), the negative-valence, moderately-active region where Scherer (2005,
  "What are emotions? And how can they be measured?", Soc. Sci. Inf. 44(4), Fig. 2) puts
  "disgusted" — our approximation, named as such. v = r·cos θ, a = r·sin θ with r = 0.8
  (the words' distance from the centre in Russell's plot, which keeps prototypes inside [-1, 1]).
- **voice** (arousal only, while voiced): the vocal correlates of activation reviewed by
  Juslin & Laukka (2003, Psychol. Bull. 129(5), Table 7) and Scherer (2003, Speech Commun.
  40): louder, higher and more variable pitch, faster, more high-frequency energy →
  higher arousal. A = tanh(Σ w_i z_i) over z-scored eGeMAPS descriptors (constants below,
  set so espeak-ng's default voice at default settings reads about 0).
- **words** (valence only, where words are spoken): VADER's compound score
  (Hutto & Gilbert 2014, ICWSM), a rule-based lexicon model, already in [-1, 1].

The ensemble averages, per dimension, the teachers that have an opinion at that step
(face always where the face is visible; voice where voiced; words where spoken).
These are weak, hand-set models: a baseline and a demonstration target, not a recognizer
with known accuracy on real affect data.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from affectflow.tasks.features.audio import EGEMAPS_NAMES
from affectflow.tasks.features.timeline import TrackFeatures
from affectflow.tasks.features.visual import FER_CLASSES, fer_probabilities

NAME = "teachers-v0"
RADIUS = 0.8
CIRCUMPLEX_DEG = {  # FER class -> angle on Russell's (1980) circumplex, degrees from "pleasure"
    "angry": 99.8,
    "disgust": 130.0,  # approximation, see the module docstring
    "fear": 116.0,
    "happy": 7.8,
    "sad": 207.5,
    "surprise": 69.8,
}
# Prosodic arousal: (descriptor, reference, scale, weight); z = (x - reference) / scale.
PROSODY = (
    ("Loudness_sma3_mean", 1.0, 0.4, 0.4),
    ("F0semitoneFrom27.5Hz_sma3nz_mean", 40.0, 6.0, 0.25),
    ("F0semitone_std", 1.5, 0.5, 0.15),
    ("loudness_peaks_per_s", 9.0, 2.0, 0.2),
    ("hammarbergIndex_sma3_mean", 12.0, 3.0, -0.1),
)
MIN_VOICED = 0.1  # a window with less voiced speech than this carries no prosodic arousal
VISUAL_EXTRACTOR = "fer-minixception-block4+logits"
AUDIO_EXTRACTOR = "egemaps-v02-lld-2s"


def circumplex() -> np.ndarray:
    """(7, 2) valence, arousal of each FER class, in FER_CLASSES order."""
    out = np.zeros((len(FER_CLASSES), 2))
    for k, name in enumerate(FER_CLASSES):
        if name in CIRCUMPLEX_DEG:
            theta = math.radians(CIRCUMPLEX_DEG[name])
            out[k] = RADIUS * math.cos(theta), RADIUS * math.sin(theta)
    return out


def face_va(fer_features: np.ndarray) -> np.ndarray:
    """(T, 2) valence, arousal from FER features (their last 7 columns are the class logits)."""
    return fer_probabilities(fer_features) @ circumplex()


def voice_arousal(egemaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) arousal and (T,) bool "has an opinion" from eGeMAPS window descriptors."""
    column = {name: i for i, name in enumerate(EGEMAPS_NAMES)}
    z = sum(w * (egemaps[:, column[n]] - ref) / scale for n, ref, scale, w in PROSODY)
    voiced = egemaps[:, column["voiced_fraction"]] >= MIN_VOICED
    return np.tanh(z), voiced


@functools.cache
def _vader() -> object:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def words_valence(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(T,) VADER compound valence and (T,) bool "words were spoken"."""
    analyzer = _vader()
    scores: dict[str, float] = {}
    for text in set(texts):
        if text:
            scores[text] = analyzer.polarity_scores(text)["compound"]  # type: ignore[attr-defined]
    values = np.array([scores.get(t, 0.0) for t in texts])
    return values, np.array([bool(t) for t in texts])


def teacher_va(track: TrackFeatures) -> np.ndarray:
    """(T, 2) ensemble valence, arousal of one track timeline in [-1, 1]; NaN where no teacher applies."""
    face = face_va(track.features["visual"])  # (T, 2)
    face_ok = track.masks["visual"].astype(float)
    voice, voiced = voice_arousal(track.features["audio"])
    voiced = voiced & track.masks["audio"]
    words, spoken = words_valence(track.texts)
    valence = _mean([(face[:, 0], face_ok), (words, spoken.astype(float))])
    arousal = _mean([(face[:, 1], face_ok), (voice, voiced.astype(float))])
    return np.stack([valence, arousal], axis=1)


def _mean(opinions: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    total = sum(w * x for x, w in opinions)
    weight = sum(w for _, w in opinions)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.maximum(weight, 1e-9), np.nan)


def check_extractors(described: dict[str, dict]) -> None:
    """The teachers read FER logits and named eGeMAPS columns: fail clearly with other extractors."""
    from affectflow.tasks.features.timeline import FeatureError

    if described["visual"]["extractor"] != VISUAL_EXTRACTOR or described["audio"]["extractor"] != AUDIO_EXTRACTOR:
        raise FeatureError(
            "the teachers baseline needs the default extractors (visual 'fer', audio 'egemaps'); "
            f"got {described['visual']['extractor']} and {described['audio']['extractor']}"
        )
