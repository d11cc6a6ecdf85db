"""The shared timeline: face gaps, text windows, RCMA windows, speakers, extractor names."""

from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest

from tasks.features import FeatureError, interpolate_rows, load_extractors, track_grid
from tasks.features_text import window_texts
from tasks.infer import speakers_at, window_starts


def test_short_face_gaps_are_interpolated_and_long_ones_masked() -> None:
    row_t = np.array([0.0, 0.2, 0.6, 3.0])  # a 0.4 s gap, then a 2.4 s gap
    x = np.array([[0.0], [1.0], [3.0], [5.0]])
    grid = track_grid(row_t, fps=5.0)
    out, valid = interpolate_rows(row_t, x, grid, max_gap_s=1.0)
    assert grid[0] == 0.0 and grid[-1] == pytest.approx(3.0) and len(grid) == 16
    assert out[2, 0] == pytest.approx(2.0) and valid[2]  # t = 0.4 s, between 1.0 and 3.0
    long_gap = (grid > 0.61) & (grid < 2.99)
    assert not valid[long_gap].any() and (out[long_gap] == 0).all()
    assert valid[~long_gap].all()


def test_text_window_never_takes_words_from_another_moment() -> None:
    word = lambda w, a, b: SimpleNamespace(word=w, start=a, end=b)  # noqa: E731
    words = [word("good", 1.0, 1.3), word("news", 1.3, 1.6), word("later", 9.0, 9.4)]
    texts = window_texts(words, np.array([0.0, 1.2, 2.9, 3.2, 5.0, 9.2]), context_s=1.5)
    assert texts == ["good news", "good news", "news", "", "", "later"]


def test_windows_overlap_by_half_and_cover_every_step() -> None:
    for n in (1, 40, 64, 65, 100, 333):
        starts = window_starts(n, 64)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + 64] = True
        assert covered.all() and starts[0] == 0
        assert all(b - a <= 32 for a, b in pairwise(starts))


def test_speaker_is_whoever_holds_the_turn_at_t() -> None:
    turns = [SimpleNamespace(speaker="A", start=0.0, end=2.0), SimpleNamespace(speaker="B", start=1.5, end=1.8)]
    assert speakers_at(np.array([0.5, 1.6, 2.5]), turns, None) == ["A", "B", None]
    words = [SimpleNamespace(word="hi", start=3.0, end=3.4, speaker="C")]
    assert speakers_at(np.array([3.2, 4.0]), None, words) == ["C", None]


def test_an_unknown_extractor_name_lists_the_choices() -> None:
    with pytest.raises(FeatureError, match="unknown visual extractor 'vgg'; choose from fer, hsemotion"):
        load_extractors("vgg", "egemaps", "minilm")
