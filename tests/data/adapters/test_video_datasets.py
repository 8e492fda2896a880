"""DISFA, AMIGOS and SEMAINE: videos (MJPG .avi written here) + label tables."""
import csv

import cv2
import numpy as np
import pytest

from fer_jax.data import labels
from fer_jax.data.adapters import base, shared
from fer_jax.data.sources import DATASETS
from tests.data.adapters import helpers

# ---------------------------------------------------------------- DISFA

FRAMES = 4
# The 12 AUs DISFA codes, one label file each (../shared/DATASETS.md, section 9).
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def _intensity(subject, au, frame):
  return (subject + DISFA_AUS.index(au) + frame) % 6


def write_disfa(d, subjects=(1, 2, 3), frames=FRAMES, video_frames=FRAMES):
  for s in subjects:
    sn = f'SN{s:03d}'
    for au in DISFA_AUS:
      p = d / 'ActionUnit_Labels' / sn / f'{sn}_au{au}.txt'
      p.parent.mkdir(parents=True, exist_ok=True)
      p.write_text(''.join(f'{f},{_intensity(s, au, f)}\n'
                           for f in range(1, frames + 1)))
    helpers.write_video(d / 'Videos_LeftCamera' / f'LeftVideo{sn}_comp.avi',
                        [40 * s + 10 * k for k in range(video_frames)])


def test_disfa_labels_frames_and_masks(tmp_path):
  write_disfa(tmp_path)
  src = DATASETS.get('disfa')('all', manual_dir=str(tmp_path))
  assert len(src) == 12 and src.labels == ('aus',)
  assert any('[7, 23]' in n for n in src.notes)
  r = src[5]  # SN002, label frame 2 = video frame 1
  helpers.check_record(r)
  assert (r['subject'], r['clip'], r['frame']) == (2, 2, 1) and r['has_aus']
  assert abs(float(r['image'].mean()) - (80 + 10)) < 4  # the right frame
  for au in DISFA_AUS:
    i = _intensity(2, au, 2)
    assert helpers.au(r, au) == (float(i >= 2), pytest.approx(i / 5))
  for au in (7, 23):  # the project's AUs DISFA does not code: masked
    assert helpers.au(r, au) == (labels.AU_MISSING, labels.AU_MISSING)
  np.testing.assert_array_equal(labels.au_known(r['aus']),
                                [a not in (7, 23) for a in labels.AUS])
  # threshold is configurable; frame_step subsamples
  src3 = DATASETS.get('disfa')('all', manual_dir=str(tmp_path), threshold=3,
                               frame_step=2)
  assert len(src3) == 6 and helpers.au(src3[0], 1)[0] == float(_intensity(1, 1, 1) >= 3)
  # split by subject: every subject in exactly one split
  subjects = [{int(r['subject']) for r in DATASETS.get('disfa')(
      s, manual_dir=str(tmp_path), fractions=(1, 1, 1))} for s in base.SPLITS]
  assert sorted(s for part in subjects for s in part) == [1, 2, 3]
  kwargs = {'manual_dir': str(tmp_path), 'fractions': [1, 1, 1]}
  helpers.through_tfds('disfa', kwargs, tmp_path, ('train',))
  batch = helpers.through_pipeline(src)
  assert (batch['aus'][:, labels.AUS.index(7)] == labels.AU_MISSING).all()


def test_disfa_bad_input_and_frames_folder(tmp_path):
  write_disfa(tmp_path, subjects=(1,))
  p = tmp_path / 'ActionUnit_Labels' / 'SN001' / 'SN001_au4.txt'
  p.write_text('1,0\n2,0\n3,7\n')  # frame 3 out of range, frame 4 missing
  with pytest.raises(shared.AdapterError, match=r'SN001_au4.txt:3: intensity 7'):
    DATASETS.get('disfa')('all', manual_dir=str(tmp_path))
  src = DATASETS.get('disfa')('all', manual_dir=str(tmp_path), skip_bad=True)
  assert len(src) == 4 and len(src.skipped) == 1
  assert helpers.au(src[2], 4)[0] == labels.AU_MISSING  # the bad line: unknown
  assert helpers.au(src[3], 4)[0] == labels.AU_MISSING  # not in the file
  assert helpers.au(src[1], 4)[0] == 0.0
  # labels past the video's end are bad; a missing AU file names itself
  write_disfa(tmp_path / 'short', subjects=(1,), video_frames=3)
  with pytest.raises(shared.AdapterError, match='frame 4: beyond the 3 frames'):
    DATASETS.get('disfa')('all', manual_dir=str(tmp_path / 'short'))
  (tmp_path / 'short' / 'ActionUnit_Labels' / 'SN001' / 'SN001_au26.txt').unlink()
  with pytest.raises(shared.AdapterError, match='SN001_au26.txt: AU file not found'):
    DATASETS.get('disfa')('all', manual_dir=str(tmp_path / 'short'))
  with pytest.raises(shared.LayoutError, match='ActionUnit_Labels'):
    DATASETS.get('disfa')('all', manual_dir=str(tmp_path / 'nope'))
  # pre-extracted frames, numbered from 1 as ffmpeg writes them
  for k in range(FRAMES):
    f = tmp_path / 'frames' / 'SN001' / f'{k + 1:05d}.png'
    f.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(f), np.full((20, 20, 3), 30 * k, np.uint8))
  src = DATASETS.get('disfa')('all', manual_dir=str(tmp_path), frames_dir='frames',
                              skip_bad=True)
  assert [int(r['image'][0, 0, 0]) for r in src] == [0, 30, 60, 90]


# ---------------------------------------------------------------- AMIGOS

AMIGOS_HEADER = ['UserID', 'VideoID', 'Segment_Index', 'Valence_Annotator_1',
                 'Valence_Annotator_2', 'Valence_Annotator_3', 'Arousal_Annotator_1',
                 'Arousal_Annotator_2', 'Arousal_Annotator_3']
# user, video, segment (1-based), 3 valence, 3 arousal ratings
AMIGOS_ROWS = [
    [1, 10, 1, 0.1, 0.2, 0.3, -0.5, -0.5, -0.2],
    [1, 10, 2, 0.4, '', 0.6, 0.0, 0.3, 0.3],      # annotator 2 left valence empty
    [1, 'N1', 1, -0.9, -0.9, -0.9, 0.9, 0.9, 0.9],
    [2, 10, 1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [2, 10, 3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],     # seconds 8-12: past the video
]


def write_amigos(d, rows=AMIGOS_ROWS, header=AMIGOS_HEADER):
  d.mkdir(parents=True, exist_ok=True)
  helpers.write_xlsx(d / 'External_Annotations.xlsx', [header] + rows)
  for user, vid, frames in [(1, '10', 16), (1, 'N1', 4), (2, '10', 6)]:
    helpers.write_video(d / f'Exp1_P{user:02d}_face' / f'P{user}_{vid}_face.avi',
                        [20 * user + 10 * k for k in range(frames)], fps=2.0)


def test_amigos_segments_frames_and_means(tmp_path):
  write_amigos(tmp_path)
  kw = {'manual_dir': str(tmp_path), 'segment_seconds': 4, 'sample_every': 2}
  src = DATASETS.get('amigos')('all', **kw)
  # Segment s (1-based) covers seconds 4(s-1)..4s; one frame every 2 s at 2 fps.
  got = [(int(r['subject']), int(r['clip']), int(r['frame'])) for r in src]
  assert got == [(1, 0, 0), (1, 0, 4), (1, 0, 8), (1, 0, 12), (1, 1, 0), (2, 2, 0),
                 (2, 2, 4)]
  assert src.dropped == {'past_video_end': 3}
  np.testing.assert_allclose([float(r['valence']) for r in src],
                             [0.2, 0.2, 0.5, 0.5, -0.9, 0.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(float(src[0]['arousal']), -0.4, atol=1e-6)
  assert abs(float(src[1]['image'].mean()) - (20 + 40)) < 4  # frame 4 of P1_10
  assert src.labels == ('va',) and all(r['has_va'] for r in src)
  helpers.through_pipeline(src)
  helpers.through_tfds('amigos', dict(kw, fractions=[1, 1, 1]), tmp_path, ('train',))


def test_amigos_errors_name_expected_and_found(tmp_path):
  write_amigos(tmp_path, AMIGOS_ROWS[:1] + [[1, 10, 2, 1.2, 0, 0, 0, 0, 0]])
  with pytest.raises(shared.AdapterError,
                     match=r'xlsx:3: valence rating\(s\) \[1.2\] outside.*clip_va'):
    DATASETS.get('amigos')('all', manual_dir=str(tmp_path))
  clipped = DATASETS.get('amigos')('all', manual_dir=str(tmp_path), clip_va=True,
                                   segment_seconds=2, sample_every=2)
  assert np.isclose(clipped[1]['valence'], 1 / 3)
  write_amigos(tmp_path / 'cols', [r[:3] + r[6:] for r in AMIGOS_ROWS],
               AMIGOS_HEADER[:3] + AMIGOS_HEADER[6:])
  with pytest.raises(shared.AdapterError, match=r"expected column\(s\) "
                     r"/Valence_Annotator_\\d\+/; found \['UserID'"):
    DATASETS.get('amigos')('all', manual_dir=str(tmp_path / 'cols'))
  write_amigos(tmp_path / 'novideo')
  (tmp_path / 'novideo' / 'Exp1_P01_face' / 'P1_N1_face.avi').unlink()
  with pytest.raises(shared.AdapterError, match=r"no video named as .* for UserID 1, "
                     r"VideoID N1 \(videos found: \['P1_10_face.avi'"):
    DATASETS.get('amigos')('all', manual_dir=str(tmp_path / 'novideo'))


# ---------------------------------------------------------------- SEMAINE

def write_semaine(d, rows, header=('session', 'frame', 'valence_R1', 'valence_R2',
                                   'arousal_R1')):
  d.mkdir(parents=True, exist_ok=True)
  with open(d / 'semaine_va.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  for session, subject_value in (('1', 50), ('2', 150)):
    helpers.write_video(d / 'Sessions' / session / 'user.avi',
                        [subject_value + 10 * k for k in range(5)])


def test_semaine_frames_and_rater_means(tmp_path):
  rows = [[1, 0, 0.2, 0.4, -0.1], [1, 3, -0.2, '', 0.5], [2, 1, 0.0, 0.0, 0.0],
          [2, 2, 0.6, 0.8, 0.2]]
  write_semaine(tmp_path, rows)
  src = DATASETS.get('semaine')('all', manual_dir=str(tmp_path))
  assert [(int(r['clip']), int(r['frame'])) for r in src] == [(0, 0), (0, 3), (1, 1),
                                                              (1, 2)]
  np.testing.assert_allclose([float(r['valence']) for r in src], [0.3, -0.2, 0, .7],
                             atol=1e-6)
  assert abs(float(src[1]['image'].mean()) - 80) < 4
  assert [int(r['subject']) for r in src] == [1, 1, 2, 2]
  assert len(DATASETS.get('semaine')('all', manual_dir=str(tmp_path),
                                     frame_step=2)) == 2
  helpers.through_pipeline(src)
  write_semaine(tmp_path / 'bad', rows, header=('session', 'frame', 'V1', 'A1', 'x'))
  with pytest.raises(shared.AdapterError, match=r"semaine_va.csv:1: expected "
                     r"column\(s\) /valence.*found \['session', 'frame', 'V1'"):
    DATASETS.get('semaine')('all', manual_dir=str(tmp_path / 'bad'))
  write_semaine(tmp_path / 'late', [[1, 9, 0, 0, 0]])
  with pytest.raises(shared.AdapterError, match=r'semaine_va.csv:2: frame 9 outside '
                     'the 5 frames'):
    DATASETS.get('semaine')('all', manual_dir=str(tmp_path / 'late'))
