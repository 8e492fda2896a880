"""The labelling page in a real browser: headless Chromium through selenium.

Clicks, drags and keys on the pad; the server is killed with -9 mid-way and
restarted; labels.csv must then hold exactly the answers the page showed as
saved, with the values the pixel positions mean (computed here from the pad's
box, independently of label.js). Skips only outside CI when the browser is
missing (CI sets FER_JAX_CI=1 and installs Debian's chromium and
chromium-driver). FER_JAX_SCREENSHOT=PATH also writes the screenshot there
(the README's docs/labeling.png).
"""
import os
import signal
import socket
import subprocess
import sys

import pytest

from fer_jax.labeling import files
from tests.labeling import fake_round

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = os.environ.get('FER_JAX_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('FER_JAX_CHROMEDRIVER', '/usr/bin/chromedriver')
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--window-size=1100,860')


def _browser_problem():
  missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
  try:
    import selenium  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    missing.append("selenium (pip install -e '.[test]')")
  if missing:
    return ('no headless browser: ' + ', '.join(missing) + ' missing '
            '(apt-get install -y chromium chromium-driver)')
  return None


@pytest.fixture(scope='module')
def driver(tmp_path_factory):
  problem = _browser_problem()
  if problem:
    if os.environ.get('FER_JAX_CI'):
      pytest.fail(problem)
    pytest.skip(problem)
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  opts = webdriver.ChromeOptions()
  opts.binary_location = CHROMIUM
  for flag in FLAGS:
    opts.add_argument(flag)
  opts.add_argument(f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}')
  d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
  d.set_page_load_timeout(20)
  yield d
  d.quit()


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class Server:
  """launch/personal.py label in a subprocess, on a fixed port."""

  def __init__(self, subject, port, *extra):
    self.args = [sys.executable, os.path.join(ROOT, 'launch', 'personal.py'), 'label',
                 subject, f'--port={port}', *extra]
    self.proc, self.url = None, None

  def start(self):
    self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    for line in self.proc.stdout:
      if line.startswith('http://'):
        self.url = line.strip()
        return self
    raise AssertionError(f'the server did not start: {self.proc.stderr.read()}')

  def kill9(self):
    self.proc.send_signal(signal.SIGKILL)
    self.proc.wait()


class Page:
  def __init__(self, d):
    from selenium.webdriver.common.action_chains import ActionChains  # pylint: disable=g-import-not-at-top
    from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
    from selenium.webdriver.common.keys import Keys  # pylint: disable=g-import-not-at-top
    self.d, self.chain, self.by, self.K = d, ActionChains, By, Keys

  def el(self, id_):
    return self.d.find_element(self.by.ID, id_)

  def text(self, id_):
    return self.el(id_).text

  def wait(self, what, timeout=10):
    from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top
    WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda _: what())

  def open(self, url):
    self.d.get(url)
    self.wait(lambda: self.el('status').get_attribute('data-state') in ('idle', 'error'))

  def pad_box(self):
    return self.d.execute_script(
        'const r = document.getElementById("pad").getBoundingClientRect();'
        'return [r.left, r.top, r.width, r.height];')

  def expected(self, dx, dy):
    """The value of a point dx, dy CSS pixels from the pad's centre: the pad
    spans [-1, 1] in both directions, arousal upwards."""
    _, _, w, h = self.pad_box()
    return dx / (w / 2), -dy / (h / 2)

  def click(self, dx, dy):
    self.chain(self.d).move_to_element_with_offset(self.el('pad'), dx, dy).click().perform()

  def drag(self, start, stop):
    pad = self.el('pad')
    (self.chain(self.d).move_to_element_with_offset(pad, *start).click_and_hold()
     .move_to_element_with_offset(pad, (start[0] + stop[0]) // 2, (start[1] + stop[1]) // 2)
     .move_to_element_with_offset(pad, *stop).release().perform())

  def hover(self, dx, dy):
    self.chain(self.d).move_to_element_with_offset(self.el('pad'), dx, dy).perform()

  def press(self, *keys):
    self.chain(self.d).send_keys(*keys).perform()

  def shown(self):
    return float(self.text('v')), float(self.text('a'))

  def progress(self):
    return self.text('progress')

  def state(self):
    return self.el('status').get_attribute('data-state')

  def saved_to(self, progress):
    """Waits for the page to say saved and to show `progress`."""
    self.wait(lambda: self.state() in ('saved', 'error') and self.progress() == progress
              or self.state() == 'error')
    assert (self.state(), self.progress()) == ('saved', progress), self.text('status')


def _close(got, want, tol):
  return all(abs(g - w) <= tol for g, w in zip(got, want))


def test_labelling_in_a_browser_survives_a_kill_9(driver, tmp_path):
  subject = os.path.dirname(fake_round.make_subject(str(tmp_path)))
  server = Server(subject, _free_port()).start()
  page = Page(driver)
  saved = []  # (frame, status, valence, arousal, expression) the page showed as saved
  try:
    page.open(server.url)
    assert page.progress() == '0/8' and 'frame 3 ' in page.text('where')
    _, _, w, _ = page.pad_box()
    px = 2 / w + 1e-9  # one CSS pixel in pad units
    # Frame 3: a click.
    page.click(100, -60)
    v, a = page.shown()
    assert _close((v, a), page.expected(100, -60), px), (v, a)
    page.press(page.K.ENTER)
    page.saved_to('1/8')
    saved.append((3, 'labelled', v, a, ''))
    # Frame 8: a click, arrow keys (0.05 each), an expression button.
    page.click(-150, 40)
    v0, a0 = page.shown()
    assert _close((v0, a0), page.expected(-150, 40), px)
    page.press(page.K.ARROW_RIGHT, page.K.ARROW_RIGHT, page.K.ARROW_UP)
    v, a = page.shown()
    assert (v, a) == (round(v0 + 0.1, 3), round(a0 + 0.05, 3))
    page.d.find_element(page.by.CSS_SELECTOR, '#expressions button[data-name="happy"]').click()
    if os.environ.get('FER_JAX_SCREENSHOT'):
      page.d.save_screenshot(str(tmp_path / 'labeling.png'))
    page.press(page.K.ENTER)
    page.saved_to('2/8')
    saved.append((8, 'labelled', v, a, 'happy'))
    # Frame 15: Skip; then frame 21: Backspace back to 15 and label it.
    page.el('skip').click()
    page.saved_to('3/8')
    saved.append((15, 'skipped', None, None, ''))
    page.press(page.K.BACKSPACE)
    page.wait(lambda: 'frame 15 ' in page.text('where'))
    page.click(50, 50)
    v, a = page.shown()
    page.press(page.K.ENTER)
    page.saved_to('3/8')  # frame 15 again: answered frames stay 3
    saved.append((15, 'labelled', v, a, ''))
    assert 'frame 21 ' in page.text('where')
    page.el('noface').click()
    page.saved_to('4/8')
    saved.append((21, 'no_face', None, None, ''))
    # Frame 30: the server dies before Enter; the page must not say saved.
    server.kill9()
    page.click(20, 180)
    v, a = page.shown()
    page.press(page.K.ENTER)
    page.wait(lambda: page.state() == 'error')
    assert page.text('status').startswith('not saved') and page.progress() == '4/8'
    assert len(files.read_answers(subject)) == len(saved)
    server.start()  # same port, same token (kept in the subject folder)
    page.press(page.K.ENTER)
    page.saved_to('5/8')
    saved.append((30, 'labelled', v, a, ''))
    # Frame 42: a drag ends where it is released.
    page.drag((0, 0), (-80, -120))
    v, a = page.shown()
    assert _close((v, a), page.expected(-80, -120), px)
    page.press(page.K.ENTER)
    page.saved_to('6/8')
    saved.append((42, 'labelled', v, a, ''))
    # Reopening continues at the first unlabelled frame (57).
    page.open(server.url)
    assert page.progress() == '6/8' and 'frame 57 ' in page.text('where')
    for frame, progress in ((57, '7/8'), (64, '8/8')):
      page.el('skip').click()
      page.saved_to(progress)
      saved.append((frame, 'skipped', None, None, ''))
    assert page.el('done').is_displayed() and not page.el('main').is_displayed()
  finally:
    if server.proc.poll() is None:
      server.kill9()
  got = [(x.frame, x.status, x.valence, x.arousal, x.expression)
         for x in files.read_answers(subject)]
  assert got == saved
  if os.environ.get('FER_JAX_SCREENSHOT'):
    _small_png(str(tmp_path / 'labeling.png'), os.environ['FER_JAX_SCREENSHOT'])


def _small_png(src, dest):
  """A 256-colour PNG: small enough to commit."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.open(src).convert('RGB').quantize(colors=256).save(dest, optimize=True)


def test_continuous_mode_samples_the_pad_into_trace_csv(driver, tmp_path):
  subject = os.path.dirname(fake_round.make_subject(str(tmp_path), clip_len=24))
  server = Server(subject, _free_port(), '--continuous').start()
  page = Page(driver)
  recorded = lambda: int(page.text('tracestatus').split()[-1].split('/')[0])
  try:
    page.open(server.url)
    page.click(-100, -100)
    first = page.shown()
    page.press('r')
    # Some samples at the first point, then the cursor moves (no button).
    page.wait(lambda: page.text('tracestatus').startswith('recording') and recorded() >= 3)
    page.hover(120, -40)
    second = page.shown()
    page.wait(lambda: page.text('tracestatus').startswith('trace'), timeout=15)
    assert page.text('tracestatus') == 'trace saved: 30 samples'
  finally:
    server.kill9()
  rows = files.read_trace(subject)
  # One pass over the 24-image clip at 8 fps: 3 s, sampled at 10 Hz.
  assert [r['t_s'] for r in rows] == [k / 10 for k in range(30)]
  assert [r['clip_index'] for r in rows] == [int(k * 8 / 10) for k in range(30)]
  assert {(r['frame'], r['round']) for r in rows} == {(3, 1)}
  assert len({r['pass'] for r in rows}) == 1
  values = [(r['valence'], r['arousal']) for r in rows]
  switch = values.index(second)
  assert values == [first] * switch + [second] * (len(values) - switch)
  assert switch >= 3
