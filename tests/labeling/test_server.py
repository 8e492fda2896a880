"""The labelling server over HTTP (urllib): the token, every refused request
leaving the files byte-identical, and answers that survive kill -9."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from fer_jax.labeling import files, server
from tests.labeling import fake_round

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRST = {'frame': 3, 'status': 'labelled', 'valence': 0.5, 'arousal': -0.25}


def _request(url, body=None, ctype='application/json', raw=None):
  data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
  req = urllib.request.Request(url, data=data, method='POST' if data is not None else 'GET')
  if data is not None and ctype:
    req.add_header('Content-Type', ctype)
  try:
    with urllib.request.urlopen(req, timeout=10) as resp:
      return resp.status, resp.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


@pytest.fixture(scope='module')
def subject(tmp_path_factory):
  return os.path.dirname(fake_round.make_subject(str(tmp_path_factory.mktemp('subject'))))


@pytest.fixture
def live(subject, tmp_path):
  """A server in this process; labels.csv and trace.csv start with one row
  each, so 'unchanged' is checked on real content."""
  for name in ('labels.csv', 'trace.csv', '.label_token'):
    if os.path.exists(os.path.join(subject, name)):
      os.remove(os.path.join(subject, name))
  files.append_answers(subject, [files.Answer(8, 1, 'skipped', saved_at='t0')])
  files.AppendOnlyCsv(files.trace_path(subject), files.TRACE_COLUMNS).append(
      [files.trace_row(8, 1, 'p0', 0.0, 0, 0.0, 0.0)])
  httpd = server.make_server(subject, port=0, token='secret-token')
  thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
  thread.start()
  base = f'http://127.0.0.1:{httpd.server_address[1]}'
  yield subject, base
  httpd.shutdown()
  httpd.server_close()


def _files(subject):
  out = {}
  for name in ('labels.csv', 'trace.csv'):
    with open(os.path.join(subject, name), 'rb') as f:
      out[name] = f.read()
  return out


def test_the_state_lists_the_round_and_starts_at_the_first_unlabelled(live):
  subject, base = live
  status, body = _request(f'{base}/api/state?token=secret-token')
  state = json.loads(body)
  assert status == 200
  assert [f['frame'] for f in state['frames']] == list(fake_round.FRAMES)
  assert (state['total'], state['answered'], state['start']) == (8, 1, 0)
  assert state['answers'] == {'8': dict(frame=8, round=1, status='skipped', valence=None,
                                        arousal=None, expression='', saved_at='t0')}
  assert state['expressions'] == list(fake_round.EXPRESSIONS)
  assert state['frames'][0]['clip_len'] == fake_round.CLIP_LEN


def test_an_answer_is_appended_and_acknowledged(live):
  subject, base = live
  before = _files(subject)['labels.csv']
  status, body = _request(f'{base}/api/answer?token=secret-token',
                          dict(FIRST, expression='happy'))
  assert status == 200 and json.loads(body)['answered'] == 2
  after = _files(subject)['labels.csv']
  assert after.startswith(before)
  assert re.fullmatch(rb'3,1,labelled,0.5,-0.25,happy,\d{4}-\d\d-\d\dT[\d:.]+Z\n',
                      after[len(before):])
  status, body = _request(f'{base}/api/state?token=secret-token')
  assert json.loads(body)['start'] == 2  # frames 3 and 8 answered


def test_a_trace_pass_is_appended_at_once(live):
  subject, base = live
  before = _files(subject)['trace.csv']
  status, _ = _request(f'{base}/api/trace?token=secret-token', {
      'frame': 15, 'pass': 'abc', 'samples': [[0, 0, 0.5, -0.5], [0.1, 7, 1, -1]]})
  assert status == 200
  assert _files(subject)['trace.csv'] == before + (
      b'15,1,abc,0.0,0,0.5,-0.5\n15,1,abc,0.1,7,1.0,-1.0\n')


@pytest.mark.parametrize('path, body, named', [
    ('/api/answer?token=wrong', FIRST, 'token'),
    ('/api/answer', FIRST, 'token'),
    ('/api/answer?token=secret-token', dict(FIRST, valence=1.5), 'outside [-1, 1]'),
    ('/api/answer?token=secret-token', dict(FIRST, arousal=-1.01), 'outside [-1, 1]'),
    ('/api/answer?token=secret-token', dict(FIRST, valence=float('nan')), 'must be a number'),
    ('/api/answer?token=secret-token', dict(FIRST, valence='0.5'), 'must be a number'),
    ('/api/answer?token=secret-token', dict(FIRST, frame=4), 'frame 4 is not in round 1'),
    ('/api/answer?token=secret-token', dict(FIRST, frame='3'), 'frame must be an integer'),
    ('/api/answer?token=secret-token', dict(FIRST, status='maybe'), "'maybe' is not one of"),
    ('/api/answer?token=secret-token', dict(FIRST, mood='ok'), 'unknown field(s): mood'),
    ('/api/answer?token=secret-token', {'frame': 3}, 'missing field(s): status'),
    ('/api/answer?token=secret-token', dict(FIRST, status='skipped'), 'a skipped answer has no'),
    ('/api/answer?token=secret-token', dict(FIRST, expression='bored'), "'bored' is not one"),
    ('/api/answer?token=secret-token', b'{"frame": 3, ', 'not JSON'),
    ('/api/answer?token=secret-token', [FIRST], 'JSON object'),
    ('/api/trace?token=wrong', {'frame': 3, 'pass': 'a', 'samples': [[0, 0, 0, 0]]}, 'token'),
    ('/api/trace?token=secret-token', {'frame': 3, 'pass': 'a', 'samples': [[0, 8, 0, 0]]},
     'clip_index 8 is outside [0, 8)'),
    ('/api/trace?token=secret-token',
     {'frame': 3, 'pass': 'a', 'samples': [[0, 0, 0, 0], [0.1, 0, 2, 0]]}, 'outside [-1, 1]'),
    ('/api/trace?token=secret-token', {'frame': 3, 'pass': 'a b', 'samples': [[0, 0, 0, 0]]},
     'pass must be'),
    ('/api/trace?token=secret-token', {'frame': 3, 'pass': 'a', 'samples': []}, 'non-empty'),
    ('/api/trace?token=secret-token', {'frame': 99, 'pass': 'a', 'samples': [[0, 0, 0, 0]]},
     'frame 99 is not in round 1'),
])
def test_a_malformed_write_is_refused_with_400_and_changes_no_file(live, path, body, named):
  subject, base = live
  before = _files(subject)
  raw = body if isinstance(body, bytes) else None
  status, reply = _request(base + path, None if raw else body, raw=raw)
  assert status == 400
  assert named in json.loads(reply)['error']
  assert _files(subject) == before


def test_a_write_that_is_not_json_content_is_refused(live):
  subject, base = live
  before = _files(subject)
  status, reply = _request(f'{base}/api/answer?token=secret-token', FIRST,
                           ctype='application/x-www-form-urlencoded')
  assert (status, json.loads(reply)['error']) == (400, 'the body must be application/json')
  assert _files(subject) == before


def test_reads_of_data_need_the_token_but_the_page_does_not(live):
  _, base = live
  assert _request(f'{base}/api/state')[0] == 400
  assert _request(f'{base}/media/3/image')[0] == 400
  status, body = _request(f'{base}/media/3/clip/7?token=secret-token')
  assert status == 200 and body[:2] == b'\xff\xd8'  # a JPEG
  assert _request(f'{base}/media/3/clip/8?token=secret-token')[0] == 404
  assert _request(f'{base}/media/4/image?token=secret-token')[0] == 404
  status, page = _request(f'{base}/')
  assert status == 200 and b'label.js' in page


def test_the_page_loads_nothing_from_the_network():
  for name in os.listdir(server.STATIC):
    with open(os.path.join(server.STATIC, name)) as f:
      text = f.read()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text), name
    assert '@import' not in text and 'cdn' not in text.lower(), name


def _start(subject, port=0):
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'launch', 'personal.py'), 'label', subject,
       f'--port={port}'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for line in proc.stdout:
    if line.startswith('http://'):
      return proc, line.strip()
  raise AssertionError(f'no URL printed: {proc.stderr.read()}')


def test_answers_acknowledged_before_a_kill_9_are_all_on_disk(tmp_path):
  subject = os.path.dirname(fake_round.make_subject(str(tmp_path)))
  proc, url = _start(subject)
  base, token = url.split('/?token=')
  sent = [dict(frame=f, status='labelled', valence=round(0.1 * k - 0.2, 3),
               arousal=round(0.3 - 0.15 * k, 3)) for k, f in enumerate(fake_round.FRAMES[:4])]
  sent.append(dict(frame=fake_round.FRAMES[4], status='no_face'))
  try:
    for body in sent:
      assert _request(f'{base}/api/answer?token={token}', body)[0] == 200
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  got = files.read_answers(subject)
  assert [(a.frame, a.status, a.valence, a.arousal) for a in got] == [
      (b['frame'], b['status'], b.get('valence'), b.get('arousal')) for b in sent]
  proc, url = _start(subject)  # a restart keeps the token and continues
  try:
    assert url.split('/?token=')[1] == token
    state = json.loads(_request(url.replace('/?', '/api/state?'))[1])
    assert (state['answered'], state['start']) == (5, 5)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_launcher_names_a_missing_subject_in_one_line(tmp_path):
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'launch', 'personal.py'),
                        'label', str(tmp_path / 'nobody')], capture_output=True,
                       text=True, timeout=60)
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [f'error: {tmp_path / "nobody"} is not a folder']
