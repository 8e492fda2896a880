"""Label Studio interop: a round as Label Studio tasks and back.

`export_round` writes round_N/label_studio/tasks.json (one task per frame,
its data: image, crop, frame, round, time_s) and config.xml, a labelling
config of two Number controls with slider="true" (valence, arousal), a
"not this person / no face" choice and, when the round has them, expression
choices. Label Studio's Skip button marks an annotation `was_cancelled`.

The Number controls hold valence and arousal times SCALE (-100..100, step 1):
Label Studio checks `(value - min) % step == 0` in floating point, which
fractional steps such as 0.01 fail for most values, so the sliders move in
integers and `read_export` divides by SCALE.

`read_export` reads Label Studio's JSON export (a list of tasks, each with
`data` and `annotations`, each annotation a `result` list of
{from_name, to_name, type, value}: https://labelstud.io/guide/export.html)
into files.Answer rows, oldest first, so files.latest_answers keeps the last
annotation of each frame, as it does for labels.csv.
"""
import json
import os
from typing import Dict, List, Sequence, Tuple
from xml.sax import saxutils

from fer_jax import atomic
from fer_jax.labeling import files

SCALE = 100
NO_FACE = 'not this person / no face'
LOCAL_FILES = '/data/local-files/?d='


def labeling_config(expressions: Sequence[str] = ()) -> str:
  """The labelling config (XML) for a round with these expression names."""
  q = saxutils.quoteattr
  lines = [
      '<View>',
      '  <Image name="crop" value="$crop" maxWidth="320px"/>',
      '  <Image name="image" value="$image" maxWidth="640px"/>',
      f'  <Header value={q(f"Valence x {SCALE}: -{SCALE} unpleasant, +{SCALE} pleasant")}/>',
      f'  <Number name="valence" toName="crop" min="-{SCALE}" max="{SCALE}" '
      'step="1" slider="true"/>',
      f'  <Header value={q(f"Arousal x {SCALE}: -{SCALE} calm, sleepy, +{SCALE} excited, alert")}/>',
      f'  <Number name="arousal" toName="crop" min="-{SCALE}" max="{SCALE}" '
      'step="1" slider="true"/>',
      '  <Choices name="face" toName="crop" choice="single">',
      f'    <Choice value={q(NO_FACE)}/>',
      '  </Choices>',
  ]
  if expressions:
    lines.append('  <Header value="Expression (optional)"/>')
    lines.append('  <Choices name="expression" toName="crop" choice="single">')
    lines += [f'    <Choice value={q(e)}/>' for e in expressions]
    lines.append('  </Choices>')
  lines.append('</View>')
  return '\n'.join(lines) + '\n'


def tasks(round_: files.Round, document_root: str,
          url_prefix: str = LOCAL_FILES) -> List[Dict]:
  """One Label Studio task per frame; image URLs are url_prefix + the path
  relative to document_root (Label Studio's local files serving)."""
  root = os.path.realpath(document_root)

  def url(path):
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel.startswith('..'):
      raise files.ContractError(f'{path} is not under {document_root}')
    return url_prefix + rel.replace(os.sep, '/')

  return [{'data': {'image': url(f.image), 'crop': url(f.crop or f.image),
                    'frame': f.frame, 'round': round_.number,
                    'time_s': f.time_s}}
          for f in round_.frames]


def export_round(subject_dir: str, number: int, url_prefix: str = LOCAL_FILES
                 ) -> Tuple[str, str]:
  """Writes round_N/label_studio/{tasks.json, config.xml}; returns both paths.
  Image URLs are relative to SUBJECT_DIR: serve it as Label Studio's
  LOCAL_FILES_DOCUMENT_ROOT."""
  round_ = files.read_round(subject_dir, number)
  out = os.path.join(round_.dir, 'label_studio')
  os.makedirs(out, exist_ok=True)
  tasks_path = os.path.join(out, 'tasks.json')
  config_path = os.path.join(out, 'config.xml')
  atomic.write_bytes(tasks_path, json.dumps(
      tasks(round_, subject_dir, url_prefix), indent=1).encode())
  atomic.write_bytes(config_path, labeling_config(round_.expressions).encode())
  return tasks_path, config_path


def _scaled(value, what: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise files.ContractError(f'{what} = {value!r} is not a number')
  v = value / SCALE
  if not -1.0 <= v <= 1.0:
    raise files.ContractError(f'{what} = {value} is outside '
                              f'[-{SCALE}, {SCALE}]')
  return v


def answers_of_task(task: Dict) -> List[files.Answer]:
  """The answers in one exported task, one per annotation."""
  data = task.get('data') or {}
  if 'frame' not in data or 'round' not in data:
    raise files.ContractError(f'task {task.get("id")}: its data has no frame '
                              'and round (not a task that export_round wrote)')
  frame, round_ = int(data['frame']), int(data['round'])
  out = []
  for ann in task.get('annotations') or ():
    where = f'task {task.get("id")} (frame {frame}) annotation {ann.get("id")}'
    saved_at = ann.get('updated_at') or ann.get('created_at') or ''
    if ann.get('was_cancelled'):
      out.append(files.Answer(frame, round_, 'skipped', saved_at=saved_at))
      continue
    found = {}
    for r in ann.get('result') or ():
      value = r.get('value') or {}
      name = r.get('from_name')
      if name in ('valence', 'arousal') and r.get('type') == 'number':
        found[name] = _scaled(value.get('number'), f'{where} {name}')
      elif name in ('face', 'expression') and r.get('type') == 'choices':
        choices = value.get('choices') or []
        found[name] = choices[0] if choices else ''
    if found.get('face') == NO_FACE:
      out.append(files.Answer(frame, round_, 'no_face', saved_at=saved_at))
    elif 'valence' in found and 'arousal' in found:
      out.append(files.Answer(frame, round_, 'labelled', found['valence'],
                              found['arousal'], found.get('expression', ''),
                              saved_at))
    else:
      missing = [k for k in ('valence', 'arousal') if k not in found]
      raise files.ContractError(f'{where}: no {" and no ".join(missing)} '
                                f'(and not "{NO_FACE}")')
  return out


def read_export(path: str) -> List[files.Answer]:
  """Answers from Label Studio's JSON export, oldest first."""
  with open(path) as f:
    try:
      exported = json.load(f)
    except json.JSONDecodeError as e:
      raise files.ContractError(f'{path} is not JSON ({e})') from None
  if not isinstance(exported, list):
    raise files.ContractError(f'{path}: Label Studio\'s JSON export is a list '
                              f'of tasks, got {type(exported).__name__}')
  answers = [a for task in exported for a in answers_of_task(task)]
  return sorted(answers, key=lambda a: a.saved_at)  # stable: ties keep order
