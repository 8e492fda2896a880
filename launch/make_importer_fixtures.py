"""Reference outputs for every weight importer, made once by the reference
frameworks, checked in CI without them
(tests/models/test_importer_references.py).

Writes tests/fixtures/importers/<reference>_<model>.npz, each holding:

* spec: JSON list of the reference's own weight names, shapes and a `kind`
  ([name, shape, kind], in the reference's state-dict / HDF5 order) that says
  how `make_weights` fills it;
* seed: `make_weights(seed, spec)` rebuilds every weight with numpy alone;
* images: uint8 NHWC inputs; the network input is `network_input(images)`
  ((u - 127.5) / 64 for torchvision and Keras, exact in float32 and float64;
  BGR pixels minus Caffe's mean for the Caffe nets);
* logits64 / logits32: the reference's outputs with the float64 weights (the
  float32 weights cast up, for Caffe whose blobs are float32) and with the
  float32 weights;
* gray_images, gray_mean, gray_logits64, gray_logits32 (Caffe's AlexNet): a
  gray image g minus one mean, and the reference's outputs on (g, g, g).

References:

* torchvision (/tmp/torchvenv: torch 2.14.1, torchvision 0.29.1): the real
  torchvision models (num_classes=10), weights loaded with load_state_dict.
* caffe (same venv): bvlc_alexnet (alexnet_lrn) and VGG_CNN_M_2048 written
  here in plain torch ops from Caffe's layer definitions (Convolution with
  groups, ReLU, LRN ACROSS_CHANNELS, MAX Pooling with Caffe's rounded-up output
  size, InnerProduct on the CHW-flattened blob), BGR input minus the mean, at
  their native 227 / 224 inputs (fc6 needs the 6x6 pool5), fc8 10-way. The
  same net built from torch.nn's modules (LocalResponseNorm, MaxPool2d with
  ceil_mode) must agree with it to 1e-12 in float64 before a fixture is saved.
* keras (/tmp/tfvenv2: tensorflow-cpu, tf_keras): keras.applications'
  ResNet50V2(weights=None, classes=10, classifier_activation=None) at 64x64.
  The weight names and their HDF5 layout are the ones tf_keras' save_weights
  writes; `write_keras_h5` rewrites that layout with h5py, and this script
  checks that Keras loads such a file back to the same outputs.

Weights (`make_weights`): each tensor is a numpy RandomState draw of at most
65537 (a prime) normals, tiled to its size (cheap for VGG's 100M-weight fc6;
within any row of under 65537 values all are distinct, so a permuted axis
shows), then scaled by kind: He-normal weights (fan-in from the layout),
biases 0.1 N, BatchNorm gamma 1 + 0.2 N, beta 0.2 N, running mean 0.2 N,
running variance exp(0.3 N) (positive, median 1). RandomState's streams are
frozen by numpy, so the seed rebuilds the same values on any numpy.

  python3 -m venv /tmp/torchvenv
  /tmp/torchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
  /tmp/torchvenv/bin/python launch/make_importer_fixtures.py torchvision caffe
  python3 -m venv /tmp/tfvenv2
  /tmp/tfvenv2/bin/pip install tensorflow-cpu tf_keras h5py numpy
  TF_USE_LEGACY_KERAS=1 /tmp/tfvenv2/bin/python launch/make_importer_fixtures.py keras

This module imports only numpy at load time: the test imports its
`make_weights`, `network_input`, `write_keras_h5` and the tables below.
"""
import json
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests',
                   'fixtures', 'importers')
PERIOD = 65537
NUM_CLASSES = 10
BATCH = 2

# torchvision model -> input side. One model per block type of each family
# the importer maps; pool5 is 3x3 (alexnet) and 2x2 (vgg) so that the adaptive
# average pool and fc6's CHW -> HWC flatten both see distinct positions.
TORCHVISION = {'alexnet': 128, 'vgg11': 64, 'vgg16_bn': 64, 'resnet18': 32,
               'resnet50': 32, 'mobilenet_v2': 32, 'inception_v3': 75}

# Caffe nets from their deploy prototxts: (name, out, in, kernel, stride, pad,
# group, LRN after the ReLU, max pool after), fcs (name, out, in), LRN
# (local_size, alpha, beta, k), mean (B, G, R), input side.
CAFFE = {
    'alexnet_lrn': dict(
        size=227, lrn=(5, 1e-4, 0.75, 1.0), mean=(104, 117, 123),
        convs=[('conv1', 96, 3, 11, 4, 0, 1, True, True),
               ('conv2', 256, 96, 5, 1, 2, 2, True, True),
               ('conv3', 384, 256, 3, 1, 1, 1, False, False),
               ('conv4', 384, 384, 3, 1, 1, 2, False, False),
               ('conv5', 256, 384, 3, 1, 1, 2, False, True)],
        fcs=[('fc6', 4096, 256 * 6 * 6), ('fc7', 4096, 4096),
             ('fc8', NUM_CLASSES, 4096)]),
    'vgg_cnn_m_2048': dict(
        size=224, lrn=(5, 5e-4, 0.75, 2.0), mean=(104, 117, 123),
        convs=[('conv1', 96, 3, 7, 2, 0, 1, True, True),
               ('conv2', 256, 96, 5, 2, 1, 1, True, True),
               ('conv3', 512, 256, 3, 1, 1, 1, False, False),
               ('conv4', 512, 512, 3, 1, 1, 1, False, False),
               ('conv5', 512, 512, 3, 1, 1, 1, False, True)],
        fcs=[('fc6', 4096, 512 * 6 * 6), ('fc7', 2048, 4096),
             ('fc8', NUM_CLASSES, 2048)]),
}
# Caffe nets also checked on a gray image g, which Caffe sees as (g, g, g)
# and the 1-channel model (conv1 summed over B, G, R) as g; one mean for all
# three channels keeps the two inputs equal.
CAFFE_GRAY = {'alexnet_lrn': (117,)}
KERAS = {'resnet50_v2': 64}
SEEDS = {'torchvision': 10, 'caffe': 20, 'keras': 30}


# ------------------------------------------------------------ pure numpy
def make_weights(seed, spec, dtype=np.float64):
  """{name: `dtype` array} (int64 zeros for `count`) from the fixture's spec.

  Each float array equals the float64 one cast to `dtype`: a draw is cast
  before it is tiled, which spares a float64 copy of VGG's fc6.
  """
  rng = np.random.RandomState(seed)
  out = {}
  for name, shape, kind in spec:
    shape = tuple(shape)
    n = int(np.prod(shape))
    if kind == 'count':  # BatchNorm's num_batches_tracked
      out[name] = np.zeros(shape, np.int64)
      continue
    v = rng.standard_normal(min(n, PERIOD))  # scaled before the tiling: the
    if kind in ('weight_in1', 'weight_in0'):  # big tensors take one pass
      fan_in = (np.prod(shape[1:]) if kind == 'weight_in1'  # torch/Caffe (out,
                else np.prod(shape[:-1]))  # in, ...), Keras (..., in, out)
      v = v * np.sqrt(2.0 / fan_in)
    elif kind == 'bias':
      v = 0.1 * v
    elif kind == 'scale':
      v = 1.0 + 0.2 * v
    elif kind in ('shift', 'mean'):
      v = 0.2 * v
    elif kind == 'var':
      v = np.exp(0.3 * v)
    else:
      raise ValueError(f'{name}: unknown kind {kind!r}')
    v = np.resize(v.astype(dtype), n).reshape(shape)
    out[name] = v
  return out


def network_input(reference, images, mean=None):
  """float64 NHWC network input of uint8 `images` (RGB, or gray with a
  1-element Caffe mean)."""
  x = images.astype(np.float64)
  if reference == 'caffe':  # Caffe's BGR order is the reference's business
    return x - np.asarray(mean, np.float64)[::-1]  # RGB minus (R, G, B) mean
  return (x - 127.5) / 64.0


def input_images(seed, size, batch=BATCH):
  return np.random.RandomState(seed + 1).randint(
      0, 256, (batch, size, size, 3)).astype(np.uint8)


def write_keras_h5(path, layer_names, spec, weights):
  """A weights-only HDF5 in the layout of tf_keras' save_weights: root attrs
  layer_names (every layer, weighted or not), per layer a group whose attr
  weight_names lists '<layer>/<weight>:0' names, datasets at those paths."""
  import h5py  # pylint: disable=g-import-not-at-top
  per_layer = {l: [] for l in layer_names}
  for name, _, _ in spec:
    per_layer[name.split('/')[0]].append(name)
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = [l.encode() for l in layer_names]
    f.attrs['backend'] = b'tensorflow'
    f.attrs['keras_version'] = b'2.21.0'
    for l in layer_names:
      g = f.create_group(l)
      g.attrs['weight_names'] = [n.encode() for n in per_layer[l]]
      for n in per_layer[l]:
        g[n] = weights[n]


def save(name, **arrays):
  os.makedirs(OUT, exist_ok=True)
  path = os.path.join(OUT, f'{name}.npz')
  np.savez_compressed(path, **arrays)
  print(f'wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)')


def summary(name, l64, l32):
  print(f'{name:28s} max|logit| {np.abs(l64).max():9.3g}  '
        f'max|f32 - f64| {np.abs(l32 - l64).max():9.2e}')


# ----------------------------------------------------------------- torch
def _tv_kind(model, key):
  import torch  # pylint: disable=g-import-not-at-top
  prefix, leaf = key.rsplit('.', 1)
  m = model.get_submodule(prefix)
  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # pylint: disable=protected-access
    return {'weight': 'scale', 'bias': 'shift', 'running_mean': 'mean',
            'running_var': 'var', 'num_batches_tracked': 'count'}[leaf]
  return {'weight': 'weight_in1', 'bias': 'bias'}[leaf]


def torchvision_fixture(name, size, seed):
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  kw = {'num_classes': NUM_CLASSES}
  if name == 'inception_v3':  # ours: no aux head, inputs already normalised
    kw.update(aux_logits=False, init_weights=False, transform_input=False)
  model = getattr(torchvision.models, name)(**kw).eval()
  spec = [[k, list(v.shape), _tv_kind(model, k)]
          for k, v in model.state_dict().items()]
  weights = make_weights(seed, spec)
  images = input_images(seed, size)
  x = network_input('torchvision', images).transpose(0, 3, 1, 2)
  logits = {}
  for bits, dtype in ((64, torch.float64), (32, torch.float32)):
    model = model.to(dtype)
    model.load_state_dict({k: torch.from_numpy(
        v if v.dtype == np.int64 else v.astype(f'float{bits}'))
                           for k, v in weights.items()})
    with torch.no_grad():
      logits[bits] = model(torch.from_numpy(x.astype(f'float{bits}'))).numpy()
  summary(f'torchvision {name} {size}', logits[64], logits[32])
  save(f'torchvision_{name}', spec=json.dumps(spec), seed=seed, images=images,
       logits64=logits[64], logits32=logits[32],
       reference=f'torch {torch.__version__}, torchvision '
       f'{torchvision.__version__}')


def caffe_spec(net):
  return [[f'{name}.{i}', shape, kind]
          for name, o, i_, k, _, _, g, *_ in net['convs']
          for i, (shape, kind) in enumerate(
              [([o, i_ // g, k, k], 'weight_in1'), ([o], 'bias')])] + [
                  [f'{name}.{i}', shape, kind] for name, o, i_ in net['fcs']
                  for i, (shape, kind) in enumerate(
                      [([o, i_], 'weight_in1'), ([o], 'bias')])]


def caffe_forward(net, blobs, x_bgr):
  """Caffe's layers in torch ops, on NCHW BGR input minus the mean."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  x = x_bgr
  for name, _, _, _, s, p, g, norm, pool in net['convs']:
    x = F.conv2d(x, blobs[f'{name}.0'], blobs[f'{name}.1'], stride=s,
                 padding=p, groups=g)
    x = torch.relu(x)
    if norm:  # b = a / (k + alpha / n * sum_{|c' - c| <= n//2} a_c'^2)^beta
      n, alpha, beta, k = net['lrn']
      sq = F.pad(x * x, (0, 0, 0, 0, n // 2, n // 2))
      window = sum(sq[:, j:j + x.shape[1]] for j in range(n))
      x = x / (k + alpha / n * window) ** beta
    if pool:  # kernel 3 stride 2; Caffe: out = ceil((H - 3) / 2) + 1
      h, w = x.shape[2:]
      oh, ow = -(-(h - 3) // 2) + 1, -(-(w - 3) // 2) + 1
      x = F.pad(x, (0, (ow - 1) * 2 + 3 - w, 0, (oh - 1) * 2 + 3 - h),
                value=-float('inf'))
      x = F.max_pool2d(x, 3, 2)
  x = x.reshape(x.shape[0], -1)  # C, H, W order
  for name, *_ in net['fcs']:
    x = x @ blobs[f'{name}.0'].T + blobs[f'{name}.1']
    if name != 'fc8':
      x = torch.relu(x)  # dropout: identity at test time
  return x


def caffe_forward_nn(net, blobs, x_bgr):
  """The same net from torch.nn's own modules (LocalResponseNorm, MaxPool2d
  with ceil_mode), a second reference for caffe_forward's hand-written ops."""
  import torch  # pylint: disable=g-import-not-at-top
  nn = torch.nn
  mods = []
  def load(m, name):
    m.weight.data, m.bias.data = blobs[f'{name}.0'], blobs[f'{name}.1']
    return m
  for name, o, i, k, s, p, g, norm, pool in net['convs']:
    mods += [load(nn.Conv2d(i, o, k, s, p, groups=g), name), nn.ReLU()]
    if norm:
      mods.append(nn.LocalResponseNorm(*net['lrn']))
    if pool:
      mods.append(nn.MaxPool2d(3, 2, ceil_mode=True))
  mods.append(nn.Flatten())
  for name, o, i in net['fcs']:
    mods.append(load(nn.Linear(i, o), name))
    if name != 'fc8':
      mods.append(nn.ReLU())
  model = nn.Sequential(*mods).to(x_bgr.dtype).eval()
  with torch.no_grad():
    return model(x_bgr).numpy()


def caffe_fixture(name, seed):
  import torch  # pylint: disable=g-import-not-at-top
  net = CAFFE[name]
  spec = caffe_spec(net)
  blobs32 = make_weights(seed, spec, np.float32)

  def reference(x):
    """{64: logits, 32: logits} on float64 NHWC BGR input."""
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    logits = {}
    for bits in (64, 32):
      dt = f'float{bits}'
      blobs = {k: torch.from_numpy(v.astype(dt)) for k, v in blobs32.items()}
      with torch.no_grad():
        logits[bits] = caffe_forward(net, blobs,
                                     torch.from_numpy(x.astype(dt))).numpy()
      if bits == 64:
        again = caffe_forward_nn(net, blobs, torch.from_numpy(x))
        rel = np.abs(again - logits[64]).max() / np.abs(logits[64]).max()
        assert rel <= 1e-12, (name, rel)
    return logits

  images = input_images(seed, net['size'], batch=1)
  logits = reference(network_input('caffe', images, net['mean'])[..., ::-1])
  summary(f'caffe {name} {net["size"]}', logits[64], logits[32])
  gray = {}
  if name in CAFFE_GRAY:
    gray_images = input_images(seed + 1, net['size'], batch=1)[..., :1]
    x = network_input('caffe', gray_images, CAFFE_GRAY[name])
    g = reference(np.repeat(x, 3, axis=-1))
    summary(f'caffe {name} gray', g[64], g[32])
    gray = dict(gray_images=gray_images, gray_mean=np.asarray(CAFFE_GRAY[name]),
                gray_logits64=g[64], gray_logits32=g[32])
  save(f'caffe_{name}', spec=json.dumps(spec), seed=seed, images=images,
       logits64=logits[64], logits32=logits[32],
       mean_bgr=np.asarray(net['mean']), **gray,
       reference=f'Caffe layers in torch {torch.__version__} ops')


# ----------------------------------------------------------------- Keras
_KERAS_KINDS = {'kernel': 'weight_in0', 'bias': 'bias', 'gamma': 'scale',
                'beta': 'shift', 'moving_mean': 'mean',
                'moving_variance': 'var'}


def keras_fixture(name, size, seed):
  import tempfile  # pylint: disable=g-import-not-at-top
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  import h5py  # pylint: disable=g-import-not-at-top
  import tf_keras as keras  # pylint: disable=g-import-not-at-top
  assert name == 'resnet50_v2'

  def build(floatx):
    keras.backend.clear_session()
    keras.backend.set_floatx(floatx)
    return keras.applications.ResNet50V2(
        weights=None, input_shape=(size, size, 3), classes=NUM_CLASSES,
        classifier_activation=None)

  tmp = tempfile.mkdtemp()
  model = build('float32')
  saved = os.path.join(tmp, 'keras.h5')
  model.save_weights(saved)  # the layout Keras itself writes
  with h5py.File(saved, 'r') as f:
    layer_names = [l.decode() if isinstance(l, bytes) else l
                   for l in f.attrs['layer_names']]
    spec = []
    for l in layer_names:
      for w in f[l].attrs['weight_names']:
        w = w.decode() if isinstance(w, bytes) else w
        leaf = w.split('/')[-1].split(':')[0]
        spec.append([w, list(f[l][w].shape), _KERAS_KINDS[leaf]])
  weights = make_weights(seed, spec)
  images = input_images(seed, size)
  x = network_input('keras', images)
  logits = {}
  for bits in (64, 32):
    model = build(f'float{bits}')
    for layer in model.layers:
      if layer.weights:
        layer.set_weights([weights[f'{layer.name}/{w.name.split("/")[-1]}']
                           .astype(f'float{bits}') for w in layer.weights])
    logits[bits] = model.predict(x.astype(f'float{bits}'), verbose=0)
    if bits == 32:  # Keras reads the test's HDF5 writer back identically
      path = os.path.join(tmp, 'rewritten.h5')
      write_keras_h5(path, layer_names, spec,
                     {k: v.astype(np.float32) for k, v in weights.items()})
      fresh = build('float32')
      fresh.load_weights(path)
      again = fresh.predict(x.astype(np.float32), verbose=0)
      assert np.array_equal(again, logits[32]), np.abs(again - logits[32]).max()
  summary(f'keras {name} {size}', logits[64], logits[32])
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  save(f'keras_{name}', spec=json.dumps(spec),
       layer_names=json.dumps(layer_names), seed=seed, images=images,
       logits64=logits[64], logits32=logits[32],
       reference=f'tf_keras {keras.__version__}, tensorflow {tf.__version__}')


def main(argv):
  parts = argv or ['torchvision', 'caffe']
  for part in parts:
    if part == 'torchvision':
      for name, size in TORCHVISION.items():
        torchvision_fixture(name, size, SEEDS['torchvision'])
    elif part == 'caffe':
      for name in CAFFE:
        caffe_fixture(name, SEEDS['caffe'])
    elif part == 'keras':
      for name, size in KERAS.items():
        keras_fixture(name, size, SEEDS['keras'])
    else:
      print(f'error: unknown part {part!r}; one of torchvision, caffe, keras')
      return 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
