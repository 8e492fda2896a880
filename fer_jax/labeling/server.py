"""The labelling page's server: the standard library's ThreadingHTTPServer.

One round of one subject. GET / is the page (static/, plain JS, nothing from
the network); the page reads its data from /api/state and /media/..., and
writes with POST /api/answer and POST /api/trace. Every /api and /media
request carries the token of the page's URL (`?token=`); a write is refused
with 400 and a one-line message (JSON {"error": ...}), leaving the files as
they were, when its token is wrong, its body is not JSON, a value is outside
[-1, 1], a frame is not in the round, or a field is missing or unknown.

An answer is acknowledged (200) only after it is on disk (files.AppendOnlyCsv
fsyncs), and the page shows 'saved' only then: a server killed with -9 loses
no answer the page showed as saved. The token is kept in SUBJECT_DIR/
.label_token (mode 0600), so a restarted server accepts the open page.
"""
import hmac
import json
import math
import os
import re
import secrets
import sys
import threading
import urllib.parse
from http import server as http_server
from typing import Dict, Optional

from fer_jax.labeling import files

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
_STATIC_FILES = {'/': 'index.html', '/index.html': 'index.html',
                 '/static/label.js': 'label.js', '/static/label.css': 'label.css'}
_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
          '.css': 'text/css; charset=utf-8', '.jpg': 'image/jpeg',
          '.jpeg': 'image/jpeg', '.png': 'image/png'}
TRACE_HZ = 10.0   # continuous mode: pad samples per second (FEELtrace-like)
NUDGE = 0.05      # an arrow key moves the point this much (Shift: a fifth)
MAX_BODY = 1 << 20
_PASS_ID = re.compile(r'^[0-9A-Za-z_-]{1,40}$')


def token_for(subject_dir: str) -> str:
  """The subject's token: read from .label_token, or made and kept there."""
  path = os.path.join(subject_dir, '.label_token')
  if os.path.exists(path):
    with open(path) as f:
      token = f.read().strip()
    if token:
      return token
  token = secrets.token_urlsafe(18)
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
  with os.fdopen(fd, 'w') as f:
    f.write(token + '\n')
  return token


def _unit(payload: Dict, key: str) -> float:
  v = payload.get(key)
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
    raise files.ContractError(f'{key} must be a number, got {v!r}')
  if not -1.0 <= v <= 1.0:
    raise files.ContractError(f'{key} = {v} is outside [-1, 1]')
  return float(v)


def _int(payload: Dict, key: str) -> int:
  v = payload.get(key)
  if isinstance(v, bool) or not isinstance(v, int):
    raise files.ContractError(f'{key} must be an integer, got {v!r}')
  return v


def _fields(payload, required, optional=()):
  if not isinstance(payload, dict):
    raise files.ContractError('the body must be a JSON object')
  missing = [k for k in required if k not in payload]
  unknown = sorted(set(payload) - set(required) - set(optional))
  if missing:
    raise files.ContractError(f'missing field(s): {", ".join(missing)}')
  if unknown:
    raise files.ContractError(f'unknown field(s): {", ".join(unknown)}')


class Labelling:
  """What the server serves and writes: one round of one subject."""

  def __init__(self, subject_dir: str, round_number: Optional[int] = None,
               continuous: bool = False):
    numbers = files.rounds(subject_dir)
    if not numbers:
      raise FileNotFoundError(f'{subject_dir} has no round_N/to_label.csv')
    if round_number is None:
      round_number = numbers[-1]
    if round_number not in numbers:
      raise FileNotFoundError(f'{files.round_dir(subject_dir, round_number)}/'
                              f'to_label.csv does not exist (rounds: {numbers})')
    self.subject_dir, self.continuous, self.rounds = subject_dir, continuous, numbers
    self.round = files.read_round(subject_dir, round_number)
    self.frames = self.round.index()
    self._labels = files.AppendOnlyCsv(files.labels_path(subject_dir),
                                       files.LABEL_COLUMNS)
    self._trace = files.AppendOnlyCsv(files.trace_path(subject_dir),
                                      files.TRACE_COLUMNS)
    self._lock = threading.Lock()
    self._latest = files.latest_answers(files.read_answers(subject_dir))

  def _answered(self) -> int:
    return sum(f in self._latest for f in self.frames)

  def state(self) -> Dict:
    with self._lock:
      latest = dict(self._latest)
    return dict(
        subject=os.path.basename(os.path.abspath(self.subject_dir)),
        round=self.round.number, rounds=self.rounds,
        total=len(self.round.frames), answered=self._answered(),
        start=files.first_unlabelled(self.round, latest),
        continuous=self.continuous, trace_hz=TRACE_HZ, nudge=NUDGE,
        expressions=list(self.round.expressions),
        frames=[dict(frame=f.frame, time_s=f.time_s, crop=f.crop is not None,
                     clip_len=len(f.clip), clip_fps=f.clip_fps,
                     clip_index=f.clip_index) for f in self.round.frames],
        answers={str(f): _answer_json(latest[f]) for f in self.frames
                 if f in latest})

  def _frame(self, payload) -> int:
    frame = _int(payload, 'frame')
    if frame not in self.frames:
      raise files.ContractError(
          f'frame {frame} is not in round {self.round.number}')
    return frame

  def answer(self, payload) -> Dict:
    """Validates one answer, appends it to labels.csv (durably)."""
    _fields(payload, ('frame', 'status'), ('valence', 'arousal', 'expression'))
    frame, status = self._frame(payload), payload['status']
    if status not in files.STATUSES:
      raise files.ContractError(f'status {status!r} is not one of '
                                f'{", ".join(files.STATUSES)}')
    valence = arousal = None
    expression = payload.get('expression') or ''
    if status == 'labelled':
      valence, arousal = _unit(payload, 'valence'), _unit(payload, 'arousal')
    elif any(payload.get(k) not in (None, '') for k in
             ('valence', 'arousal', 'expression')):
      raise files.ContractError(f'a {status} answer has no valence, arousal '
                                'or expression')
    if expression and expression not in self.round.expressions:
      raise files.ContractError(
          f'expression {expression!r} is not one of this round\'s: '
          f'{", ".join(self.round.expressions) or "none"}')
    a = files.Answer(frame=frame, round=self.round.number, status=status,
                     valence=valence, arousal=arousal, expression=expression,
                     saved_at=files.now())
    with self._lock:
      files.append_answers(self.subject_dir, [a], writer=self._labels)
      self._latest[frame] = a
    return dict(saved=True, answer=_answer_json(a), answered=self._answered(),
                total=len(self.round.frames))

  def trace(self, payload) -> Dict:
    """Validates one pass of pad samples, appends them to trace.csv at once."""
    _fields(payload, ('frame', 'pass', 'samples'))
    frame = self._frame(payload)
    pass_id = payload['pass']
    if not isinstance(pass_id, str) or not _PASS_ID.match(pass_id):
      raise files.ContractError(f'pass must be 1-40 letters, digits, _ or -, '
                                f'got {pass_id!r}')
    samples = payload['samples']
    if not isinstance(samples, list) or not samples or len(samples) > 100000:
      raise files.ContractError('samples must be a non-empty list')
    clip_len = max(1, len(self.frames[frame].clip))
    rows = []
    for i, s in enumerate(samples):
      if not isinstance(s, list) or len(s) != 4:
        raise files.ContractError(
            f'sample {i} must be [t_s, clip_index, valence, arousal]')
      named = dict(zip(('t_s', 'clip_index', 'valence', 'arousal'), s))
      t = named['t_s']
      if isinstance(t, bool) or not isinstance(t, (int, float)) or not (
          math.isfinite(t) and t >= 0):
        raise files.ContractError(f'sample {i}: t_s must be a number >= 0')
      ci = _int(named, 'clip_index')
      if not 0 <= ci < clip_len:
        raise files.ContractError(f'sample {i}: clip_index {ci} is outside '
                                  f'[0, {clip_len})')
      rows.append(files.trace_row(frame, self.round.number, pass_id, t, ci,
                                  _unit(named, 'valence'), _unit(named, 'arousal')))
    with self._lock:
      self._trace.append(rows)
    return dict(saved=True, samples=len(rows))

  def media(self, parts) -> Optional[str]:
    """The file of /media/<frame>/image|crop|clip/<i>, or None."""
    try:
      f = self.frames.get(int(parts[0]))
    except (ValueError, IndexError):
      return None
    if f is None:
      return None
    if parts[1:] == ['image']:
      return f.image
    if parts[1:] == ['crop']:
      return f.crop
    if len(parts) == 3 and parts[1] == 'clip' and parts[2].isdigit():
      i = int(parts[2])
      return f.clip[i] if i < len(f.clip) else None
    return None


def _answer_json(a: files.Answer) -> Dict:
  return dict(frame=a.frame, round=a.round, status=a.status, valence=a.valence,
              arousal=a.arousal, expression=a.expression, saved_at=a.saved_at)


class _Handler(http_server.BaseHTTPRequestHandler):
  server_version = 'fer_jax-label/1'

  def log_message(self, fmt, *args):
    if not self.server.quiet:
      super().log_message(fmt, *args)

  def _send(self, status: int, body: bytes, ctype: str, cache: bool = False):
    self.send_response(status)
    self.send_header('Content-Type', ctype)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'private, max-age=3600' if cache else 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status: int, obj):
    self._send(status, json.dumps(obj).encode(), 'application/json')

  def _error(self, status: int, message: str):
    self._json(status, {'error': message})

  def _token_ok(self, query) -> bool:
    given = (query.get('token') or [''])[0]
    return hmac.compare_digest(given.encode(), self.server.token.encode())

  def do_GET(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    query = urllib.parse.parse_qs(url.query)
    if url.path in _STATIC_FILES:
      name = _STATIC_FILES[url.path]
      with open(os.path.join(STATIC, name), 'rb') as f:
        return self._send(200, f.read(), _TYPES[os.path.splitext(name)[1]])
    if url.path == '/api/state' or url.path.startswith('/media/'):
      if not self._token_ok(query):
        return self._error(400, 'wrong or missing token: open the URL the '
                           'server printed')
      if url.path == '/api/state':
        return self._json(200, self.server.labelling.state())
      path = self.server.labelling.media(url.path.split('/')[2:])
      if path:
        with open(path, 'rb') as f:
          return self._send(200, f.read(),
                            _TYPES.get(os.path.splitext(path)[1].lower(),
                                       'application/octet-stream'), cache=True)
    self._error(404, f'no such page: {url.path}')

  def do_POST(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    routes = {'/api/answer': self.server.labelling.answer,
              '/api/trace': self.server.labelling.trace}
    if url.path not in routes:
      return self._error(404, f'no such endpoint: {url.path}')
    if not self._token_ok(urllib.parse.parse_qs(url.query)):
      return self._error(400, 'wrong or missing token: open the URL the '
                         'server printed')
    if not (self.headers.get('Content-Type') or '').startswith('application/json'):
      return self._error(400, 'the body must be application/json')
    try:
      length = int(self.headers.get('Content-Length') or '')
    except ValueError:
      return self._error(400, 'no Content-Length')
    if not 0 <= length <= MAX_BODY:
      return self._error(400, f'the body must be at most {MAX_BODY} bytes')
    body = self.rfile.read(length)
    try:
      payload = json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      return self._error(400, f'the body is not JSON ({e})')
    try:
      result = routes[url.path](payload)
    except files.ContractError as e:
      return self._error(400, str(e))
    self._json(200, result)


class LabelServer(http_server.ThreadingHTTPServer):
  daemon_threads = True

  def __init__(self, labelling: Labelling, host: str, port: int, token: str,
               quiet: bool = True):
    super().__init__((host, port), _Handler)
    self.labelling, self.token, self.quiet = labelling, token, quiet

  @property
  def url(self) -> str:
    host, port = self.server_address[:2]
    host = f'[{host}]' if ':' in host else host
    return f'http://{host}:{port}/?token={self.token}'


def make_server(subject_dir: str, round_number: Optional[int] = None,
                host: str = '127.0.0.1', port: int = 0, continuous: bool = False,
                token: Optional[str] = None, quiet: bool = True) -> LabelServer:
  """A bound server (port 0: any free port); `serve_forever()` runs it."""
  labelling = Labelling(subject_dir, round_number, continuous)
  return LabelServer(labelling, host, port, token or token_for(subject_dir),
                     quiet)


def serve(subject_dir: str, round_number: Optional[int] = None,
          host: str = '127.0.0.1', port: int = 0, continuous: bool = False,
          out=None):
  """Serves the page until Ctrl-C, after printing its URL."""
  out = out or sys.stdout
  httpd = make_server(subject_dir, round_number, host, port, continuous)
  lab = httpd.labelling
  state = lab.state()
  print(f'Round {lab.round.number} of {subject_dir}: {state["answered"]}/'
        f'{state["total"]} frames answered'
        f'{" (continuous mode: trace.csv)" if continuous else ""}. Open:',
        file=out)
  print(httpd.url, file=out, flush=True)
  if host not in ('127.0.0.1', 'localhost', '::1'):
    print(f'Bound to {host}: other machines can reach the page (with the token).',
          file=out, flush=True)
  try:
    httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    httpd.server_close()
