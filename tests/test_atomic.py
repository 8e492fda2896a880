"""fer_jax/atomic.py: what each writer leaves on disk, and that a write that
fails leaves the old file as it was."""
import json
import os

import numpy as np
import pytest

from fer_jax import atomic


def test_each_writer_writes_what_was_asked_and_no_temporary_file(tmp_path):
  d = tmp_path / 'new' / 'folder'  # created on the way
  atomic.write_json(str(d / 'a.json'), {'b': 1, 'a': [2.5]}, indent=1,
                    sort_keys=True)
  assert (d / 'a.json').read_text() == '{\n "a": [\n  2.5\n ],\n "b": 1\n}'
  atomic.write_csv(str(d / 'r.csv'), [dict(x=1, y='u', z=9), dict(x=2, y='v')],
                   ['x', 'y'])
  with open(d / 'r.csv', newline='') as f:
    assert f.read() == 'x,y\r\n1,u\r\n2,v\r\n'  # csv's own line ends, z left out
  atomic.savez(str(d / 'z.npz'), a=np.arange(3), b=np.eye(2))
  with np.load(d / 'z.npz') as z:
    assert z['a'].tolist() == [0, 1, 2] and z['b'].tolist() == [[1, 0], [0, 1]]
  atomic.write_bytes(str(d / 'b.bin'), b'\x00\x01')
  assert (d / 'b.bin').read_bytes() == b'\x00\x01'
  atomic.write_text(str(d / 't.txt'), 'one\ntwo\n')
  atomic.write_text(str(d / 't.txt'), 'three\n')  # replaces
  assert (d / 't.txt').read_text() == 'three\n'
  assert sorted(os.listdir(d)) == ['a.json', 'b.bin', 'r.csv', 't.txt', 'z.npz']


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
  path = tmp_path / 'doc.json'
  atomic.write_json(str(path), {'ok': True})
  with pytest.raises(TypeError):
    atomic.write_json(str(path), {'bad': object()})  # fails halfway through
  assert json.loads(path.read_text()) == {'ok': True}
  assert os.listdir(tmp_path) == ['doc.json']
