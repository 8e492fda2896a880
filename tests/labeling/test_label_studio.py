"""Label Studio interop against hand-written config/tasks and an export in
Label Studio's documented JSON format (https://labelstud.io/guide/export.html:
a list of tasks with data and annotations; a Number control's result value is
{"number": N}, a Choices control's {"choices": [...]})."""
import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from fer_jax.labeling import files, label_studio

HERE = os.path.dirname(os.path.abspath(__file__))


def test_the_config_has_two_number_sliders_and_the_choices():
  text = label_studio.labeling_config(('happy', 'sad'))
  assert text == '''<View>
  <Image name="crop" value="$crop" maxWidth="320px"/>
  <Image name="image" value="$image" maxWidth="640px"/>
  <Header value="Valence x 100: -100 unpleasant, +100 pleasant"/>
  <Number name="valence" toName="crop" min="-100" max="100" step="1" slider="true"/>
  <Header value="Arousal x 100: -100 calm, sleepy, +100 excited, alert"/>
  <Number name="arousal" toName="crop" min="-100" max="100" step="1" slider="true"/>
  <Choices name="face" toName="crop" choice="single">
    <Choice value="not this person / no face"/>
  </Choices>
  <Header value="Expression (optional)"/>
  <Choices name="expression" toName="crop" choice="single">
    <Choice value="happy"/>
    <Choice value="sad"/>
  </Choices>
</View>
'''
  root = ET.fromstring(text)  # well-formed
  assert [n.get('name') for n in root.iter('Number')] == ['valence', 'arousal']
  assert 'expression' not in label_studio.labeling_config(())


def test_export_round_writes_one_task_per_frame(tmp_path):
  img = np.zeros((8, 8, 3), np.uint8)
  files.write_round(str(tmp_path), 2, [dict(frame=4, time_s=0.5, image=img, crop=img),
                                       dict(frame=7, image=img)])
  tasks_path, config_path = label_studio.export_round(str(tmp_path), 2)
  assert tasks_path == str(tmp_path / 'round_2' / 'label_studio' / 'tasks.json')
  with open(tasks_path) as f:
    assert json.load(f) == [
        {'data': {'image': '/data/local-files/?d=round_2/frames/000004.jpg',
                  'crop': '/data/local-files/?d=round_2/crops/000004.jpg',
                  'frame': 4, 'round': 2, 'time_s': 0.5}},
        {'data': {'image': '/data/local-files/?d=round_2/frames/000007.jpg',
                  'crop': '/data/local-files/?d=round_2/frames/000007.jpg',
                  'frame': 7, 'round': 2, 'time_s': None}}]
  with open(config_path) as f:
    assert f.read() == label_studio.labeling_config(())


def test_read_export_gives_answers_oldest_first():
  got = label_studio.read_export(os.path.join(HERE, 'label_studio_export.json'))
  assert got == [
      files.Answer(3, 1, 'labelled', 0.35, -0.2, 'happy', '2026-11-30T09:05:10.000000Z'),
      files.Answer(8, 1, 'skipped', saved_at='2026-11-30T09:05:20.000000Z'),
      files.Answer(15, 1, 'no_face', saved_at='2026-11-30T09:05:30.000000Z'),
      files.Answer(21, 1, 'labelled', 0.1, 1.0, '', '2026-11-30T09:05:40.000000Z'),
      files.Answer(21, 1, 'labelled', -0.5, 0.6, '', '2026-11-30T10:00:00.000000Z')]
  latest = files.latest_answers(got)
  assert (latest[21].valence, latest[21].arousal) == (-0.5, 0.6)


def _task(result, **ann):
  return [{'id': 1, 'data': {'frame': 3, 'round': 1},
           'annotations': [dict(id=9, result=result, was_cancelled=False, **ann)]}]


@pytest.mark.parametrize('exported, named', [
    (_task([{'from_name': 'valence', 'type': 'number', 'value': {'number': 5}}]),
     'no arousal'),
    (_task([{'from_name': 'valence', 'type': 'number', 'value': {'number': 150}},
            {'from_name': 'arousal', 'type': 'number', 'value': {'number': 0}}]),
     'outside [-100, 100]'),
    ([{'id': 1, 'data': {'image': 'x.jpg'}, 'annotations': []}], 'no frame'),
    ({'tasks': []}, 'a list of tasks'),
])
def test_a_wrong_export_is_named(tmp_path, exported, named):
  path = tmp_path / 'export.json'
  path.write_text(json.dumps(exported))
  with pytest.raises(files.ContractError) as e:
    label_studio.read_export(str(path))
  assert named in str(e.value)
