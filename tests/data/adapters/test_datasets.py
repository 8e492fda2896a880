"""AffectNet, AFEW-VA, RAF-DB, SFEW, CK+ and KDEF from fixtures in their layouts."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from fer_jax.data import labels
from fer_jax.data.adapters import base, shared
from fer_jax.data.sources import DATASETS
from tests.data.adapters import helpers


def _img(path, value, shape=(60, 80, 3)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  img = np.full(shape, value, np.uint8)
  img[..., 0] = 255 - value if len(shape) == 3 else value  # red differs from blue
  assert cv2.imwrite(str(path), img)


def _landmarks(x0=10, y0=10, w=40, h=40, seed=0):
  rng = np.random.default_rng(seed)
  lm = rng.uniform((x0, y0), (x0 + w, y0 + h), (68, 2))
  return lm.round(2)


# ---------------------------------------------------------------- AffectNet

# The list files' header, in its order (../shared/DATASETS.md, section 2a).
AFFECTNET_HEADER = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width',
                    'face_height', 'facial_landmarks', 'expression', 'valence',
                    'arousal']
# expression: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger,
# 7 Contempt, 8 None, 9 Uncertain, 10 No-Face; valence/arousal -2 = invalid.
AFFECTNET_ROWS = [  # (expression, valence, arousal)
    (0, 0.1, 0.2), (6, -0.5, 0.6), (7, -0.3, 0.4), (8, 0.0, 0.1), (10, -2, -2),
    (3, 0.7, 0.8)]


def write_affectnet(d, rows=AFFECTNET_ROWS, extra=()):
  lists = d / 'Manually_Annotated_file_lists'
  lists.mkdir(parents=True)
  with open(lists / 'training.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(AFFECTNET_HEADER)
    for i, (e, v, a) in enumerate(rows):
      name = f'{i % 2}/{i:040x}.jpg'
      _img(d / 'Manually_Annotated_Images' / name, 20 * i, (100, 120, 3))
      # 136 ';'-separated floats x1;y1;x2;y2;...; each row its own points
      lm = ';'.join(f'{x:.2f}' for x in _landmarks(seed=i).reshape(-1))
      w.writerow([name, 10, 10, 40, 40, lm, e, v, a])
    for row in extra:
      w.writerow(row)


def test_affectnet_csv_subsets(tmp_path):
  write_affectnet(tmp_path)
  md = str(tmp_path)
  basic7 = DATASETS.get('affectnet')('train', manual_dir=md, image_size=32)
  assert [helpers.name_of(r) for r in basic7] == ['neutral', 'anger', 'surprise']
  assert basic7.dropped == {'contempt': 1, 'none': 1, 'no-face': 1}
  r = basic7[1]  # the CSV's second row
  helpers.check_record(r)
  assert r['has_va'] and np.isclose(r['valence'], -0.5) and np.isclose(r['arousal'], .6)
  # The 40x40 face box is stretched to 32x32; the landmarks move with it.
  np.testing.assert_allclose(r['landmarks'], (_landmarks(seed=1) - 10 + .5) * .8 - .5,
                             atol=1e-3)
  np.testing.assert_allclose(basic7[2]['landmarks'],  # row 6 (surprise)
                             (_landmarks(seed=5) - 10 + .5) * .8 - .5, atol=1e-3)
  # each record has its own row's image (green = 20 * row, JPEG +-3)
  assert [round(float(x['image'][..., 1].mean()) / 20) for x in basic7] == [0, 1, 5]
  assert r['image'].shape == (32, 32, 3)
  assert [int(r['expression']) for r in DATASETS.get('affectnet')(
      'train', manual_dir=md, subset='basic8', image_size=32)] == [0, 6, 7, 3]
  va = DATASETS.get('affectnet')('train', manual_dir=md, subset='va', image_size=32)
  assert [int(r['expression']) for r in va] == [0, 6, -1, -1, 3]
  assert va.dropped == {'no_va': 1} and all(r['has_va'] for r in va)
  assert len(DATASETS.get('affectnet')('test', manual_dir=md)) == 0


def test_affectnet_bad_rows_and_layout(tmp_path):
  write_affectnet(tmp_path, AFFECTNET_ROWS[:1],
                  extra=[['0/x.jpg', 1, 1, 5, 5, '', 12, 0, 0],
                         ['0/missing.jpg', 1, 1, 5, 5, '', 1, 0, 0]])
  with pytest.raises(shared.AdapterError, match=r'training.csv:3: expression 12'):
    DATASETS.get('affectnet')('train', manual_dir=str(tmp_path))
  src = DATASETS.get('affectnet')('train', manual_dir=str(tmp_path), skip_bad=True)
  assert len(src) == 1 and 'missing.jpg not found' in src.skipped[1]
  with pytest.raises(shared.LayoutError, match='training.csv'):
    DATASETS.get('affectnet')('train', manual_dir=str(tmp_path / 'nope'))


def test_affectnet_through_tfds_and_pipeline(tmp_path):
  write_affectnet(tmp_path)
  kwargs = {'manual_dir': str(tmp_path), 'image_size': 32}
  helpers.through_tfds('affectnet', kwargs, tmp_path, ('train',))
  helpers.through_pipeline(DATASETS.get('affectnet')('train', **kwargs))


def test_affectnet_basic8_contempt_through_pipeline(tmp_path):
  write_affectnet(tmp_path)
  src = DATASETS.get('affectnet')('train', manual_dir=str(tmp_path), subset='basic8',
                                  image_size=32)
  assert src.expression_names == labels.EXPRESSIONS_WITH_CONTEMPT
  assert src.expression_names[int(src[2]['expression'])] == 'contempt'
  batch = helpers.through_pipeline(src)  # label 7 passes the pipeline's check
  np.testing.assert_array_equal(batch['expression'], [0, 6, 7, 3])
  assert DATASETS.get('affectnet')('train', manual_dir=str(tmp_path),
                                   image_size=32).expression_names == labels.EXPRESSIONS


def test_affectnet_npy_layout(tmp_path):
  ann, images = tmp_path / 'val_set' / 'annotations', tmp_path / 'val_set' / 'images'
  ann.mkdir(parents=True)
  for i, (e, v, a) in zip((0, 2, 10), [(1, 0.5, 0.25), (7, 0, 0), (4, -0.25, 0.5)]):
    np.save(ann / f'{i}_exp.npy', np.array(str(e)))
    np.save(ann / f'{i}_val.npy', np.array(str(v)))
    np.save(ann / f'{i}_aro.npy', np.array(str(a)))
    np.save(ann / f'{i}_lnd.npy', _landmarks().reshape(-1))
    _img(images / f'{i}.jpg', 40 * i % 250, (64, 64, 3))
  src = DATASETS.get('affectnet')('validation', manual_dir=str(tmp_path),
                                  image_size=None)
  assert [helpers.name_of(r) for r in src] == ['happy', 'fear']  # ids 0, 10
  assert np.isclose(src[1]['valence'], -0.25)
  np.testing.assert_allclose(src[0]['landmarks'], _landmarks(), atol=1e-4)
  helpers.through_pipeline(src)


# ---------------------------------------------------------------- AFEW-VA

def write_afew(d, clips=('001', '002', '003')):
  for c, clip in enumerate(clips):
    cdir = d / '01' / clip
    frames = {}
    for k in range(2):
      key = f'{k:05d}'
      _img(cdir / f'{key}.png', 30 * c + k, (50, 60, 3))
      frames[key] = {'valence': c - 1 + k, 'arousal': -c, 'landmarks':
                     _landmarks().tolist()}
    (cdir / f'{clip}.json').write_text(json.dumps(
        {'actor': f'actor{c % 2}', 'frames': frames, 'video_id': clip}))


def test_afew_va_clips_and_scaling(tmp_path):
  write_afew(tmp_path)
  src = DATASETS.get('afew_va')('all', manual_dir=str(tmp_path))
  assert len(src) == 6
  r = src[3]  # clip 002, frame 1
  assert (r['clip'], r['frame'], r['subject']) == (2, 1, 1)
  assert np.isclose(r['valence'], 0.1) and np.isclose(r['arousal'], -0.1)
  assert not r['has_expression'] and r['has_va']
  np.testing.assert_allclose(r['eyes'][0], _landmarks()[36:42].mean(0), atol=1e-4)
  clips = [{int(r['clip']) for r in DATASETS.get('afew_va')(
      s, manual_dir=str(tmp_path), fractions=(1, 1, 1))} for s in base.SPLITS]
  assert sorted(c for s in clips for c in s) == [1, 2, 3]  # each clip in one split
  kwargs = {'manual_dir': str(tmp_path), 'fractions': [1, 1, 1]}
  helpers.through_tfds('afew_va', kwargs, tmp_path, ('train',))


def test_afew_va_out_of_range(tmp_path):
  write_afew(tmp_path, ('001',))
  p = tmp_path / '01' / '001' / '001.json'
  data = json.loads(p.read_text())
  data['frames']['00001']['valence'] = 11
  p.write_text(json.dumps(data))
  with pytest.raises(shared.AdapterError, match="001.json: frame '00001'.*outside"):
    DATASETS.get('afew_va')('all', manual_dir=str(tmp_path))
  assert len(DATASETS.get('afew_va')('all', manual_dir=str(tmp_path),
                                     skip_bad=True)) == 1


# ---------------------------------------------------------------- RAF-DB

def write_rafdb(d, lines):
  (d / 'basic' / 'EmoLabel').mkdir(parents=True)
  (d / 'basic' / 'EmoLabel' / 'list_patition_label.txt').write_text(
      '\n'.join(lines) + '\n')
  for i, line in enumerate(lines):
    stem = line.split()[0].split('.')[0]
    _img(d / 'basic' / 'Image' / 'aligned' / f'{stem}_aligned.jpg', 10 * i,
         (100, 100, 3))


def test_rafdb_labels_and_corrupt_image(tmp_path):
  write_rafdb(tmp_path, ['train_00001.jpg 5', 'train_00002.jpg 1', 'test_0001.jpg 7',
                         'train_00003.jpg 4'])
  train = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path))
  assert [helpers.name_of(r) for r in train] == ['sad', 'surprise', 'happy']
  assert [helpers.name_of(r) for r in DATASETS.get('rafdb')(
      'test', manual_dir=str(tmp_path))] == ['neutral']
  helpers.through_pipeline(train)
  bad = tmp_path / 'basic' / 'Image' / 'aligned' / 'train_00002_aligned.jpg'
  bad.write_bytes(b'not a jpeg')
  with pytest.raises(shared.AdapterError, match='train_00002_aligned.jpg: corrupt'):
    train[1]
  src = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), skip_bad=True)
  assert len(src) == 2 and 'list_patition_label.txt:2' in src.skipped[0]


def test_rafdb_bad_label_line(tmp_path):
  write_rafdb(tmp_path, ['train_00001.jpg 5', 'train_00002.jpg 8'])
  with pytest.raises(shared.AdapterError, match='list_patition_label.txt:2: label 8'):
    DATASETS.get('rafdb')('train', manual_dir=str(tmp_path))


# ---------------------------------------------------------------- SFEW

def test_sfew_folders(tmp_path):
  for split, sub in [('Train', 'Train_Aligned_Faces'), ('Val', 'Val_Aligned_Faces_new')]:
    for v, cls in enumerate(('Angry', 'Neutral', 'Surprise')):
      _img(tmp_path / split / sub / cls / f'Movie_000519240_0000000{v}.png', v * 9,
           (181, 143, 3))
  train = DATASETS.get('sfew')('train', manual_dir=str(tmp_path))
  assert [helpers.name_of(r) for r in train] == ['anger', 'neutral', 'surprise']
  val = DATASETS.get('sfew')('validation', manual_dir=str(tmp_path), image_size=64)
  assert val[0]['image'].shape == (64, 64, 3) and len(val) == 3
  helpers.through_pipeline(val)
  with pytest.raises(shared.LayoutError, match='Train_Aligned_Faces'):
    DATASETS.get('sfew')('train', manual_dir=str(tmp_path / 'Val'))


# ---------------------------------------------------------------- CK+

def write_ckplus(d):
  for s, q, emotion in [('S005', '001', 3), ('S010', '002', 2), ('S011', '001', None),
                        ('S014', '003', 5)]:
    for k in range(1, 4):
      stem = f'{s}_{q}_{k:08d}'
      _img(d / 'cohn-kanade-images' / s / q / f'{stem}.png', 10 * k, (49, 64))
      (d / 'Landmarks' / s / q).mkdir(parents=True, exist_ok=True)
      np.savetxt(d / 'Landmarks' / s / q / f'{stem}_landmarks.txt', _landmarks(),
                 fmt='   %.7e')
    if emotion is not None:
      (d / 'Emotion_labels' / 'Emotion' / s / q).mkdir(parents=True)
      (d / 'Emotion_labels' / 'Emotion' / s / q / f'{stem}_emotion.txt').write_text(
          f'   {emotion:.7e}\n')


def test_ckplus_peaks_neutral_and_contempt(tmp_path):
  write_ckplus(tmp_path)
  src = DATASETS.get('ckplus')('all', manual_dir=str(tmp_path), neutral_frames=1)
  assert [(int(r['subject']), helpers.name_of(r)) for r in src] == [
      (5, 'neutral'), (5, 'disgust'), (14, 'neutral'), (14, 'happy')]
  assert src.dropped == {'contempt': 1, 'unlabelled': 1}
  assert src[1]['frame'] == 2 and src[1]['image'].shape == (49, 64, 1)
  np.testing.assert_allclose(src[1]['landmarks'], _landmarks(), atol=1e-4)
  splits = [DATASETS.get('ckplus')(s, manual_dir=str(tmp_path), fractions=(1, 0, 1))
            for s in ('train', 'test')]
  assert sorted(int(r['subject']) for s in splits for r in s) == [5, 14]
  helpers.through_pipeline(src, channels=1)


def write_facs(d, s, q, frame, lines):
  p = d / 'FACS_labels' / 'FACS' / s / q / f'{s}_{q}_{frame:08d}_facs.txt'
  p.parent.mkdir(parents=True, exist_ok=True)
  p.write_text(''.join(f'   {au:.7e}   {i:.7e}\n' for au, i in lines))


def test_ckplus_facs_aus(tmp_path):
  write_ckplus(tmp_path)
  write_facs(tmp_path, 'S005', '001', 3, [(1, 3), (2, 0), (10, 2), (43, 5)])
  write_facs(tmp_path, 'S011', '001', 3, [(12, 4), (25, 1)])  # no emotion file
  src = DATASETS.get('ckplus')('all', manual_dir=str(tmp_path), neutral_frames=1)
  assert src.labels == ('expression', 'aus')
  assert any('[10, 43]' in n for n in src.notes)
  neutral, peak = src[0], src[1]
  assert not neutral['has_aus'] and peak['has_aus']  # CK+ codes the peak only
  assert helpers.au(peak, 1) == (1.0, pytest.approx(0.6))
  assert helpers.au(peak, 2) == (1.0, labels.AU_MISSING)  # 0: intensity not coded
  assert helpers.au(peak, 4) == (0.0, 0.0)  # not listed: absent at the peak
  assert not src[3]['has_aus']  # S014 has no FACS file
  assert len(src) == 4 and src.dropped['unlabelled'] == 1
  au_only = DATASETS.get('ckplus')('all', manual_dir=str(tmp_path), facs_only=True)
  r = [r for r in au_only if r['subject'] == 11][0]
  assert not r['has_expression'] and helpers.au(r, 12) == (1.0, pytest.approx(0.8))
  helpers.through_pipeline(src, channels=1)
  contempt = DATASETS.get('ckplus')('all', manual_dir=str(tmp_path), contempt=True)
  assert 7 in [int(r['expression']) for r in contempt]
  assert contempt.expression_names == labels.EXPRESSIONS_WITH_CONTEMPT
  write_facs(tmp_path, 'S005', '001', 3, [(1, 3), (2, 9)])
  with pytest.raises(shared.AdapterError, match=r'S005_001_00000003_facs.txt:2: '
                     'intensity 9.0 of AU2 outside 0-5'):
    DATASETS.get('ckplus')('all', manual_dir=str(tmp_path))
  assert not DATASETS.get('ckplus')('all', manual_dir=str(tmp_path),
                                    facs=False)[0]['has_aus']


def test_ckplus_bad_emotion_file(tmp_path):
  write_ckplus(tmp_path)
  (tmp_path / 'Emotion_labels/Emotion/S005/001/S005_001_00000003_emotion.txt'
   ).write_text('9\n')
  with pytest.raises(shared.AdapterError, match='S005_001_00000003_emotion.txt:1'):
    DATASETS.get('ckplus')('all', manual_dir=str(tmp_path))


# ---------------------------------------------------------------- KDEF

def test_kdef_names_angles_and_subjects(tmp_path):
  for name in ('AF01ANS.JPG', 'AF01HAS.JPG', 'AF01HAFL.JPG', 'BM02NES.jpg',
               'AM02SUS.JPG'):
    folder = name[:4]
    _img(tmp_path / 'KDEF' / folder / name, 50, (76, 56, 3))
  src = DATASETS.get('kdef')('all', manual_dir=str(tmp_path), image_size=32)
  assert [(int(r['subject']), helpers.name_of(r)) for r in src] == [
      (1, 'anger'), (1, 'happy'), (102, 'surprise'), (102, 'neutral')]
  assert len(DATASETS.get('kdef')('all', manual_dir=str(tmp_path),
                                  angles=('S', 'FL'))) == 5
  helpers.through_pipeline(src)
  _img(tmp_path / 'KDEF' / 'AF01' / 'oops.jpg', 1)
  with pytest.raises(shared.AdapterError, match='oops.jpg: name does not match'):
    DATASETS.get('kdef')('all', manual_dir=str(tmp_path))


def test_contempt_needs_an_eight_class_task(tmp_path):
  """AffectNet basic8 (label 7 = contempt) trains an 8-way expression head; a
  7-way task on it is refused, naming the fix."""
  import jax.numpy as jnp
  from fer_jax.tasks import get_task
  from fer_jax.train.loop import check_expression_classes
  write_affectnet(tmp_path)
  src = DATASETS.get('affectnet')('train', manual_dir=str(tmp_path), subset='basic8',
                                  image_size=32)
  with pytest.raises(ValueError, match='expression_classes=8'):
    check_expression_classes(get_task('affect', targets=('expression',)), src,
                             'affectnet')
  task = get_task('affect', targets=('expression',), expression_classes=8)
  check_expression_classes(task, src, 'affectnet')
  assert task.num_outputs == 8 and task.expression_names[7] == 'contempt'
  batch = helpers.through_pipeline(src)
  logits = jnp.zeros((4, 8)).at[:, 7].set(2.0)
  loss, _ = task.loss(logits, {k: jnp.asarray(v) for k, v in batch.items()})
  # Hand value: mean over the 4 samples of -log softmax at the label; the
  # contempt sample's target logit is 2, the others' 0.
  z = np.log(7 + np.exp(2.0))
  np.testing.assert_allclose(float(loss), np.mean([z, z, z - 2.0, z]), rtol=1e-6)
