"""The subject folder's files, checked against hand-written CSV text."""
import os

import numpy as np
import pytest

from fer_jax.labeling import files


def _img(value, size=16):
  return np.full((size, size, 3), value, np.uint8)


def _two_frame_round(tmp_path):
  items = [dict(frame=5, time_s=0.2, image=_img(10), crop=_img(20, 8),
                clip=[_img(30), _img(40)], clip_index=1, sampler='gsx'),
           dict(frame=9, image=_img(50))]
  return files.write_round(str(tmp_path), 1, items, expressions=('happy', 'sad'),
                           clip_fps=8.0)


def test_write_round_writes_the_documented_layout(tmp_path):
  rdir = _two_frame_round(tmp_path)
  with open(os.path.join(rdir, 'to_label.csv')) as f:
    assert f.read() == (
        'frame,time_s,image,crop,clip,clip_fps,clip_index,sampler\n'
        '5,0.2,frames/000005.jpg,crops/000005.jpg,clips/000005,8.0,1,gsx\n'
        '9,,frames/000009.jpg,,,,,\n')
  for rel in ('frames/000005.jpg', 'crops/000005.jpg', 'clips/000005/000.jpg',
              'clips/000005/001.jpg', 'frames/000009.jpg', 'round.json'):
    assert os.path.isfile(os.path.join(rdir, rel)), rel
  r = files.read_round(str(tmp_path), 1)
  assert [f.frame for f in r.frames] == [5, 9]
  assert r.expressions == ('happy', 'sad')
  a, b = r.frames
  assert (a.time_s, a.clip_fps, a.clip_index, a.extra) == (0.2, 8.0, 1, {'sampler': 'gsx'})
  assert [os.path.basename(p) for p in a.clip] == ['000.jpg', '001.jpg']
  assert a.crop.endswith('crops/000005.jpg') and os.path.isabs(a.image)
  assert (b.time_s, b.crop, b.clip, b.clip_index) == (None, None, (), None)
  assert files.rounds(str(tmp_path)) == [1]


def test_a_hand_filled_to_label_csv_needs_only_frame_and_image(tmp_path):
  rdir = tmp_path / 'round_2'
  (rdir / 'pics').mkdir(parents=True)
  (rdir / 'pics' / 'a.png').write_bytes(b'not checked')
  (rdir / 'to_label.csv').write_text('image,frame\npics/a.png,17\n')
  r = files.read_round(str(tmp_path), 2)
  (f,) = r.frames
  assert (f.frame, f.clip_fps, f.crop, r.expressions) == (17, files.CLIP_FPS, None, ())


@pytest.mark.parametrize('csv_text, error, named', [
    ('frame,image\n1,../outside.jpg\n', files.ContractError, 'leaves the round folder'),
    ('frame,image\n1,a.jpg\n1,a.jpg\n', files.ContractError, 'listed twice'),
    ('frame,image\n1,missing.jpg\n', FileNotFoundError, 'missing.jpg'),
    ('frame,picture\n1,a.jpg\n', files.ContractError, 'no column(s) image'),
    ('frame,image\n-3,a.jpg\n', files.ContractError, 'int >= 0'),
    ('frame,image,clip_fps\n1,a.jpg,fast\n', files.ContractError, "'fast' is not a number"),
])
def test_a_broken_to_label_csv_is_named(tmp_path, csv_text, error, named):
  rdir = tmp_path / 'round_1'
  rdir.mkdir()
  (rdir / 'a.jpg').write_bytes(b'x')
  (tmp_path / 'outside.jpg').write_bytes(b'x')
  (rdir / 'to_label.csv').write_text(csv_text)
  with pytest.raises(error) as e:
    files.read_round(str(tmp_path), 1)
  assert named in str(e.value)


def test_answers_append_as_documented_and_the_last_one_wins(tmp_path):
  d = str(tmp_path)
  files.append_answers(d, [
      files.Answer(3, 1, 'labelled', 0.35, -0.2, 'happy', '2026-01-01T00:00:00.000Z'),
      files.Answer(8, 1, 'skipped', saved_at='2026-01-01T00:00:01.000Z')])
  files.append_answers(d, [
      files.Answer(3, 1, 'no_face', saved_at='2026-01-01T00:00:02.000Z'),
      files.Answer(15, 1, 'labelled', -1.0, 1.0, '', '2026-01-01T00:00:03.000Z')])
  with open(files.labels_path(d)) as f:
    assert f.read() == (
        'frame,round,status,valence,arousal,expression,saved_at\n'
        '3,1,labelled,0.35,-0.2,happy,2026-01-01T00:00:00.000Z\n'
        '8,1,skipped,,,,2026-01-01T00:00:01.000Z\n'
        '3,1,no_face,,,,2026-01-01T00:00:02.000Z\n'
        '15,1,labelled,-1.0,1.0,,2026-01-01T00:00:03.000Z\n')
  answers = files.read_answers(d)
  assert answers[0] == files.Answer(3, 1, 'labelled', 0.35, -0.2, 'happy',
                                    '2026-01-01T00:00:00.000Z')
  latest = files.latest_answers(answers)
  assert {k: v.status for k, v in latest.items()} == {
      3: 'no_face', 8: 'skipped', 15: 'labelled'}


def test_first_unlabelled_skips_every_answered_frame(tmp_path):
  _two_frame_round(tmp_path)
  r = files.read_round(str(tmp_path), 1)
  assert files.first_unlabelled(r, {}) == 0
  assert files.first_unlabelled(r, {5: None}) == 1
  assert files.first_unlabelled(r, {9: None}) == 0
  assert files.first_unlabelled(r, {5: None, 9: None}) == 2


def test_a_torn_last_line_is_ignored_then_removed_by_the_next_append(tmp_path):
  d = str(tmp_path)
  good = ('frame,round,status,valence,arousal,expression,saved_at\n'
          '3,1,skipped,,,,t0\n')
  with open(files.labels_path(d), 'w') as f:
    f.write(good + '8,1,labe')  # a crash in the middle of a write
  assert [a.frame for a in files.read_answers(d)] == [3]
  files.append_answers(d, [files.Answer(8, 1, 'no_face', saved_at='t1')])
  with open(files.labels_path(d)) as f:
    assert f.read() == good + '8,1,no_face,,,,t1\n'


def test_appending_to_a_foreign_file_is_refused_and_changes_nothing(tmp_path):
  d = str(tmp_path)
  with open(files.labels_path(d), 'w') as f:
    f.write('a,b\n1,2\n')
  with pytest.raises(files.ContractError, match='not the header'):
    files.append_answers(d, [files.Answer(3, 1, 'skipped')])
  with open(files.labels_path(d)) as f:
    assert f.read() == 'a,b\n1,2\n'


def test_trace_rows_round_trip(tmp_path):
  d = str(tmp_path)
  w = files.AppendOnlyCsv(files.trace_path(d), files.TRACE_COLUMNS)
  w.append([files.trace_row(3, 1, 'p1', 0.0, 0, 0.5, -0.5),
            files.trace_row(3, 1, 'p1', 0.1, 0, -0.0, 1.0)])
  with open(files.trace_path(d)) as f:
    assert f.read() == ('frame,round,pass,t_s,clip_index,valence,arousal\n'
                        '3,1,p1,0.0,0,0.5,-0.5\n'
                        '3,1,p1,0.1,0,0.0,1.0\n')
  assert files.read_trace(d)[1] == dict(frame=3, round=1, t_s=0.1, clip_index=0,
                                        valence=0.0, arousal=1.0, **{'pass': 'p1'})
