// The labelling page: plain JS, no library, nothing from the network.
// The pad maps its box to [-1, 1] x [-1, 1]: valence left to right, arousal
// bottom to top. An answer counts as saved only when the server says 200.
'use strict';
(function () {
  const token = new URLSearchParams(location.search).get('token') || '';
  const q = '?token=' + encodeURIComponent(token);
  // Russell (1980), "A circumplex model of affect": the eight affect concepts
  // at 45 degree steps, counter-clockwise from pleasure.
  const WORDS = [['pleasure', 0], ['excitement', 45], ['arousal', 90],
    ['distress', 135], ['displeasure', 180], ['depression', 225],
    ['sleepiness', 270], ['relaxation', 315]];
  const $ = (id) => document.getElementById(id);
  const pad = $('pad');
  let S = null;          // /api/state
  let i = 0;             // index of the frame shown
  let point = null;      // [valence, arousal]
  let expression = '';
  let busy = false;
  let clipTimer = null, clipImages = [];
  let recording = false;

  const r3 = (x) => Math.round(x * 1000) / 1000;
  const clamp = (x) => Math.max(-1, Math.min(1, x));

  function setStatus(kind, text) {
    const el = $('status');
    el.className = kind;
    el.dataset.state = kind;
    el.textContent = text;
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = pad.clientWidth, h = pad.clientHeight;
    if (pad.width !== Math.round(w * dpr)) {
      pad.width = Math.round(w * dpr);
      pad.height = Math.round(h * dpr);
    }
    const g = pad.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const cx = w / 2, cy = h / 2, R = w / 2;
    const X = (v) => cx + v * R, Y = (a) => cy - a * R;
    g.strokeStyle = '#ccc';
    g.lineWidth = 1;
    g.beginPath(); g.arc(cx, cy, R - 0.5, 0, 2 * Math.PI); g.stroke();
    g.setLineDash([3, 4]);
    g.beginPath(); g.arc(cx, cy, R / 2, 0, 2 * Math.PI); g.stroke();
    g.setLineDash([]);
    g.strokeStyle = '#999';
    g.beginPath(); g.moveTo(0, cy); g.lineTo(w, cy); g.moveTo(cx, 0); g.lineTo(cx, h);
    g.stroke();
    g.fillStyle = '#555';
    g.font = '13px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    for (const [word, deg] of WORDS) {
      const t = deg * Math.PI / 180;
      g.fillText(word, X(0.7 * Math.cos(t)), Y(0.7 * Math.sin(t)));
    }
    g.fillStyle = '#999';
    g.font = '11px system-ui, sans-serif';
    g.textAlign = 'right';
    g.fillText('valence →', w - 4, cy + 10);
    g.textAlign = 'left';
    g.fillText('↑ arousal', cx + 4, 9);
    if (point) {
      g.fillStyle = recording ? '#b71c1c' : '#1565c0';
      g.beginPath(); g.arc(X(point[0]), Y(point[1]), 7, 0, 2 * Math.PI); g.fill();
      g.strokeStyle = '#fff'; g.lineWidth = 2; g.stroke();
    }
    $('v').textContent = point ? point[0].toFixed(3) : '–';
    $('a').textContent = point ? point[1].toFixed(3) : '–';
  }

  function setPoint(p) {
    point = [r3(clamp(p[0])), r3(clamp(p[1]))];
    draw();
  }

  function fromEvent(ev) {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) / r.width * 2 - 1,
            1 - (ev.clientY - r.top) / r.height * 2];
  }

  function showClip(k) {
    if (clipImages.length) $('clip').src = clipImages[k % clipImages.length].src;
  }

  function playClip(f) {
    clearInterval(clipTimer);
    let k = 0;
    showClip(0);
    if (clipImages.length > 1) {
      clipTimer = setInterval(() => showClip(++k), 1000 / f.clip_fps);
    }
  }

  function showExpressions() {
    for (const b of $('expressions').children) {
      b.classList.toggle('on', b.dataset.name === expression);
    }
  }

  function showFrame(k) {
    i = Math.max(0, Math.min(k, S.total));
    $('progress').textContent = S.answered + '/' + S.total;
    const done = i >= S.total;
    $('done').hidden = !done;
    $('main').hidden = done;
    if (done) { clearInterval(clipTimer); return; }
    const f = S.frames[i];
    $('where').textContent = 'round ' + S.round + ' · frame ' + f.frame +
        (f.time_s != null ? ' (' + f.time_s.toFixed(2) + ' s)' : '') +
        ' · ' + (i + 1) + ' of ' + S.total;
    const base = '/media/' + f.frame + '/';
    $('frame').src = base + 'image' + q;
    $('crop').src = f.crop ? base + 'crop' + q : base + 'image' + q;
    clipImages = [];
    for (let c = 0; c < f.clip_len; c++) {
      const im = new Image();
      im.src = base + 'clip/' + c + q;
      clipImages.push(im);
    }
    $('clip').parentNode.hidden = !f.clip_len;
    $('clipcap').textContent = 'clip, ' + f.clip_fps + ' fps';
    playClip(f);
    const prev = S.answers[f.frame];
    point = prev && prev.status === 'labelled' ? [prev.valence, prev.arousal] : null;
    expression = prev ? prev.expression || '' : '';
    showExpressions();
    draw();
    $('tracestatus').textContent = '';
  }

  async function post(path, body) {
    const resp = await fetch(path + q, {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(body)});
    let j = {};
    try { j = await resp.json(); } catch (e) { /* not JSON: the status says it */ }
    if (!resp.ok) throw new Error(j.error || ('HTTP ' + resp.status));
    return j;
  }

  async function save(status) {
    if (busy || recording || !S || i >= S.total) return;
    if (status === 'labelled' && !point) {
      setStatus('error', 'click the pad first');
      return;
    }
    const f = S.frames[i];
    const body = {frame: f.frame, status: status};
    if (status === 'labelled') {
      body.valence = point[0];
      body.arousal = point[1];
      if (expression) body.expression = expression;
    }
    busy = true;
    setStatus('saving', 'saving…');
    try {
      const j = await post('/api/answer', body);
      S.answers[f.frame] = j.answer;
      S.answered = j.answered;
      setStatus('saved', 'saved frame ' + f.frame + ' (' + status + ')');
      showFrame(i + 1);
    } catch (e) {
      const msg = e instanceof TypeError ?
          'the server does not answer: restart it, then press Enter again' : e.message;
      setStatus('error', 'not saved: ' + msg);
    } finally {
      busy = false;
    }
  }

  function record() {
    if (!S || !S.continuous || recording || busy || i >= S.total) return;
    const f = S.frames[i];
    const hz = S.trace_hz;
    const seconds = f.clip_len ? f.clip_len / f.clip_fps : 3;
    const n = Math.ceil(seconds * hz - 1e-9);
    const pass = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    const samples = [];
    if (!point) setPoint([0, 0]);
    recording = true;
    clearInterval(clipTimer);
    $('record').classList.add('recording');
    $('tracestatus').textContent = 'recording… 0/' + n;
    let k = 0;
    const timer = setInterval(async () => {
      const t = k / hz;
      const ci = f.clip_len ? Math.min(f.clip_len - 1, Math.floor(t * f.clip_fps + 1e-9)) : 0;
      showClip(ci);
      samples.push([r3(t), ci, point[0], point[1]]);
      k += 1;
      $('tracestatus').textContent = 'recording… ' + k + '/' + n;
      if (k < n) return;
      clearInterval(timer);
      recording = false;
      $('record').classList.remove('recording');
      draw();
      playClip(f);
      try {
        const j = await post('/api/trace', {frame: f.frame, pass: pass, samples: samples});
        $('tracestatus').textContent = 'trace saved: ' + j.samples + ' samples';
      } catch (e) {
        $('tracestatus').textContent = 'trace not saved: ' + (
          e instanceof TypeError ? 'the server does not answer' : e.message);
      }
    }, 1000 / hz);
  }

  pad.addEventListener('pointerdown', (ev) => {
    pad.setPointerCapture(ev.pointerId);
    pad.focus();
    setPoint(fromEvent(ev));
  });
  pad.addEventListener('pointermove', (ev) => {
    // Dragging moves the point; while a trace records, the cursor does.
    if (ev.buttons || recording) setPoint(fromEvent(ev));
  });

  $('save').addEventListener('click', () => save('labelled'));
  $('skip').addEventListener('click', () => save('skipped'));
  $('noface').addEventListener('click', () => save('no_face'));
  $('back').addEventListener('click', () => { if (S && !busy) showFrame(i - 1); });
  $('record').addEventListener('click', record);

  document.addEventListener('keydown', (ev) => {
    if (!S) return;
    const step = ev.shiftKey ? S.nudge / 5 : S.nudge;
    const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0],
                   ArrowUp: [0, step], ArrowDown: [0, -step]};
    if (ev.key in moves) {
      ev.preventDefault();
      if (i >= S.total) return;
      const p = point || [0, 0];
      setPoint([p[0] + moves[ev.key][0], p[1] + moves[ev.key][1]]);
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      save('labelled');
    } else if (ev.key === 'Backspace') {
      ev.preventDefault();
      if (!busy && !recording) showFrame(i - 1);
    } else if ((ev.key === 'r' || ev.key === 'R') && S.continuous) {
      record();
    } else if (/^[1-9]$/.test(ev.key) && S.expressions.length >= +ev.key) {
      const name = S.expressions[+ev.key - 1];
      expression = expression === name ? '' : name;
      showExpressions();
    }
  });

  async function start() {
    try {
      const resp = await fetch('/api/state' + q);
      const j = await resp.json();
      if (!resp.ok) throw new Error(j.error || ('HTTP ' + resp.status));
      S = j;
    } catch (e) {
      setStatus('error', 'cannot load: ' + e.message);
      return;
    }
    S.expressions.forEach((name, k) => {
      const b = document.createElement('button');
      b.textContent = (k < 9 ? (k + 1) + ' ' : '') + name;
      b.dataset.name = name;
      b.addEventListener('click', () => {
        expression = expression === name ? '' : name;
        showExpressions();
      });
      $('expressions').appendChild(b);
    });
    $('tracebox').hidden = !S.continuous;
    setStatus('idle', S.answered ? 'continuing at the first unlabelled frame' : 'ready');
    showFrame(S.start);
  }

  window.addEventListener('resize', draw);
  start();
})();
