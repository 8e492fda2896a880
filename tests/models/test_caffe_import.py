"""Caffe .caffemodel import: hand-encoded files, flax layout, errors.

The files are written by the small protobuf wire-format encoder below, written
from the encoding spec (varints, length-delimited fields, packed floats), not
with the importer's message classes. Both of caffe.proto's net forms are
covered: the current `layer` (NetParameter field 100, LayerParameter) and the
legacy `layers` (field 2, V1LayerParameter with legacy 4-D blob dims) that the
2014 model zoo files use. Blob names and shapes are those of bvlc_alexnet; the
values are random. Parity of the imported nets with Caffe's (bvlc_alexnet on RGB
and gray input, VGG_CNN_M_2048) is checked without torch in
test_importer_references.py, which writes its .caffemodel with this encoder.
"""
import struct

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common
from fer_jax.models import caffe
from fer_jax.models import get_model
from fer_jax.models import importers
from fer_jax.models import partition
from fer_jax.train import init as init_lib

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


# ------------------------------------------------- protobuf wire format
# https://protobuf.dev/programming-guides/encoding/: a field is a varint tag
# (number << 3 | wire type) then its value; 0 = varint, 2 = length-delimited
# (a varint byte length, then the bytes), 5 = 32-bit little-endian. A packed
# repeated scalar is one length-delimited field holding the values back to back.
# Encoders return lists of byte chunks, joined once: the weights are ~250 MB.
def varint(n: int) -> bytes:
  out = bytearray()
  while True:
    low, n = n & 0x7F, n >> 7
    out.append(low | (0x80 if n else 0))
    if not n:
      return bytes(out)


def tag(field, wire_type):
  return varint(field << 3 | wire_type)


def uint(field, n):
  return [tag(field, 0) + varint(int(n))]


def ld(field, chunks):
  return [tag(field, 2), varint(sum(len(c) for c in chunks))] + chunks


def string(field, s):
  return ld(field, [s.encode()])


def packed_varints(field, values):
  return ld(field, [b''.join(varint(int(v)) for v in values)])


def packed(field, values, fmt):  # fmt '<f4' (float) or '<f8' (double)
  return ld(field, [memoryview(np.ascontiguousarray(values, fmt)).cast('B')])


def fixed32_float(field, x):  # an unpacked repeated float element
  return [tag(field, 5) + struct.pack('<f', x)]


def cat(*lists):
  return [c for l in lists for c in l]


# Numbers from BVLC/caffe src/caffe/proto/caffe.proto. BlobProto: num 1,
# channels 2, height 3, width 4, data 5, diff 6, shape 7 (BlobShape: dim 1),
# double_data 8.
def blob(a, legacy=False, double=False):
  a = np.asarray(a)
  if legacy:  # (num, channels, height, width), leading 1s as Caffe wrote them
    dims = (1,) * (4 - a.ndim) + a.shape
    out = cat(*(uint(f, d) for f, d in zip((1, 2, 3, 4), dims)))
  else:
    out = ld(7, packed_varints(1, a.shape))
  out += packed(8, a.ravel(), '<f8') if double else packed(5, a.ravel(), '<f4')
  return out + packed(6, [0.5, -0.5], '<f4')  # diff: not read


# V1LayerParameter.LayerType values.
V1_TYPES = {'Convolution': 4, 'InnerProduct': 14, 'ReLU': 18, 'LRN': 15,
            'Pooling': 17, 'Dropout': 6, 'Softmax': 20}


def layer(name, type_, blobs=(), legacy=False, double_bias=False):
  """A LayerParameter, or with `legacy` a V1LayerParameter, with extra fields
  the reader must skip."""
  encoded = [blob(b, legacy, double=double_bias and i == 1)
             for i, b in enumerate(blobs)]
  if legacy:  # bottom 2, top 3, name 4, type 5, blobs 6, blobs_lr 7
    return cat(string(2, 'below'), string(3, name), string(4, name),
               uint(5, V1_TYPES[type_]), *(ld(6, b) for b in encoded),
               *(fixed32_float(7, 1.0) for _ in encoded))
  # name 1, type 2, bottom 3, top 4, blobs 7, convolution_param 106
  return cat(string(1, name), string(2, type_), string(3, 'below'),
             string(4, name), *(ld(7, b) for b in encoded),
             ld(106, uint(1, 96)))


def net(layers, legacy=False):
  """NetParameter: name 1, input 3, input_dim 4, layers 2 (V1) / layer 100."""
  return cat(string(1, 'CaffeNet'), string(3, 'data'),
             *(uint(4, d) for d in (10, 3, 227, 227)),
             *(ld(2 if legacy else 100, l) for l in layers))


def write(path, chunks):
  with open(path, 'wb') as f:
    f.writelines(chunks)
  return str(path)


# ------------------------------------------------------------- bvlc_alexnet
# From its deploy prototxt: (name, out, in, kernel, stride, pad, group, LRN
# after the ReLU, max pool after); fcs (name, out, in); input side.
ALEXNET = dict(
    model='alexnet_lrn', size=227,
    convs=[('conv1', 96, 3, 11, 4, 0, 1, True, True),
           ('conv2', 256, 96, 5, 1, 2, 2, True, True),
           ('conv3', 384, 256, 3, 1, 1, 1, False, False),
           ('conv4', 384, 384, 3, 1, 1, 2, False, False),
           ('conv5', 256, 384, 3, 1, 1, 2, False, True)],
    fcs=[('fc6', 4096, 256 * 6 * 6), ('fc7', 4096, 4096), ('fc8', 1000, 4096)])


def random_blobs(spec, seed=0):
  """{layer: [weight, bias]} in Caffe's layouts, He-normal weights."""
  rng = np.random.default_rng(seed)
  def he(shape, fan_in):
    return (rng.standard_normal(shape, np.float32)
            * np.float32(np.sqrt(2.0 / fan_in)))
  out = {}
  for name, o, i, k, _, _, g, _, _ in spec['convs']:
    out[name] = [he((o, i // g, k, k), i // g * k * k),
                 0.1 * rng.standard_normal(o, np.float32)]
  for name, o, i in spec['fcs']:
    out[name] = [he((o, i), i),
                 0.1 * rng.standard_normal(o, np.float32)]
  return out


def caffemodel(spec, blobs, legacy=False):
  """The serialized net: weighted layers with ReLU/LRN/pool/dropout between."""
  layers = []
  for name, *_, norm, pool in spec['convs']:
    i = name[-1]
    layers += [layer(name, 'Convolution', blobs[name], legacy),
               layer(f'relu{i}', 'ReLU', legacy=legacy)]
    layers += [layer(f'norm{i}', 'LRN', legacy=legacy)] if norm else []
    layers += [layer(f'pool{i}', 'Pooling', legacy=legacy)] if pool else []
  for name, *_ in spec['fcs']:
    # fc8's bias as double_data in the legacy form (the reader takes either)
    layers.append(layer(name, 'InnerProduct', blobs[name], legacy,
                        double_bias=legacy and name == 'fc8'))
    if name != 'fc8':
      layers += [layer(f'relu{name[2:]}', 'ReLU', legacy=legacy),
                 layer(f'drop{name[2:]}', 'Dropout', legacy=legacy)]
  layers.append(layer('prob', 'Softmax', legacy=legacy))
  return net(layers, legacy)


def target(spec, channels=3, num_outputs=1000):
  model = get_model(spec['model'], num_outputs=num_outputs)
  size = spec['size']
  return model, jax.eval_shape(model.init, RNGS,
                               jnp.zeros((1, size, size, channels)))


@pytest.fixture(scope='module')
def alexnet(tmp_path_factory):
  """AlexNet blobs and .caffemodel files in both forms."""
  blobs = random_blobs(ALEXNET)
  files = {}
  for form in ('layer', 'layers'):
    path = tmp_path_factory.mktemp('caffe') / f'bvlc_alexnet_{form}.caffemodel'
    files[form] = write(path, caffemodel(ALEXNET, blobs, form == 'layers'))
  return blobs, files


# ------------------------------------------------------------ without torch
def test_both_forms_read_and_land_at_flax_paths(alexnet):
  blobs, files = alexnet
  new, old = (caffe.read_caffemodel(files[f]) for f in ('layer', 'layers'))
  assert list(new) == list(old) == list(blobs)  # only layers with weights
  assert new['fc6'][0].shape == (4096, 9216)
  assert old['fc6'][0].shape == (1, 1, 4096, 9216)  # legacy dims, as stored
  assert old['fc8'][1].shape == (1, 1, 1, 1000)
  assert old['fc8'][1].dtype == np.float64  # stored as double_data
  for name, arrays in blobs.items():
    assert np.array_equal(new[name][0], arrays[0])
    assert np.array_equal(old[name][0].reshape(arrays[0].shape), arrays[0])
    assert np.array_equal(old[name][1].reshape(-1), arrays[1])

  _, shapes = target(ALEXNET)
  v = importers.import_caffe('alexnet_lrn', new, shapes)
  same = jax.tree.map(np.array_equal, v,
                      importers.import_caffe('alexnet_lrn', old, shapes))
  assert all(jax.tree.leaves(same))
  p = jax.tree.map(np.asarray, v['params'])
  feats, head = p['features'], p['head']
  w1, w2, w6, w8 = (blobs[n][0] for n in ('conv1', 'conv2', 'fc6', 'fc8'))
  # conv1: Caffe's input channels are B, G, R; ours R, G, B.
  assert feats['conv1']['kernel'].shape == (11, 11, 3, 96)
  assert feats['conv1']['kernel'][4, 7, 0, 50] == w1[50, 2, 4, 7]
  assert feats['conv1']['kernel'][4, 7, 2, 50] == w1[50, 0, 4, 7]
  # conv2, group 2: output 200 (second group) sees input 48 + 7 as its 7th.
  assert feats['conv2']['kernel'].shape == (5, 5, 48, 256)
  assert feats['conv2']['kernel'][1, 3, 7, 200] == w2[200, 7, 1, 3]
  np.testing.assert_array_equal(feats['conv5']['bias'], blobs['conv5'][1])
  # fc6 input: Caffe flattens pool5 (256, 6, 6) as c*36 + h*6 + w, we as
  # (h*6 + w)*256 + c.
  c, h, w, o = 100, 2, 5, 3000
  assert (head['fc6']['kernel'][(h * 6 + w) * 256 + c, o]
          == w6[o, c * 36 + h * 6 + w])
  assert head['fc6']['kernel'][0, o] == w6[o, 0]
  assert head['fc6']['kernel'][1, o] == w6[o, 36]  # channel 1 at (0, 0)
  # fc8 is the output layer.
  assert head['out']['kernel'][17, 999] == w8[999, 17]
  np.testing.assert_array_equal(head['out']['bias'], blobs['fc8'][1])

  # A gray model sums conv1 over the input channels; a new label space
  # (head=False) keeps its own output layer but loads fc6 and fc7.
  _, gray = target(ALEXNET, channels=1, num_outputs=7)
  g = importers.import_caffe('alexnet_lrn', blobs, gray, head=False)
  np.testing.assert_allclose(
      g['params']['features']['conv1']['kernel'][..., 0, :],
      w1.sum(axis=1).transpose(1, 2, 0), rtol=1e-6)
  np.testing.assert_array_equal(g['params']['head']['fc7']['kernel'],
                                blobs['fc7'][0].T)
  assert g['params']['head']['out']['kernel'].shape == (4096, 7)
  with pytest.raises(importers.WeightMismatchError, match=r'head/out/kernel'):
    importers.import_caffe('alexnet_lrn', blobs, gray)  # 1000 vs 7 outputs


def test_mismatch_lists_every_name_and_the_file(tmp_path):
  blobs = random_blobs({**ALEXNET, 'fcs': []})
  blobs['conv3'][0] = blobs['conv3'][0][:, :128]  # wrong in/groups
  blobs['conv5'] = blobs['conv5'][:1]  # no bias
  blobs['conv6'] = [np.zeros((8, 256, 3, 3), np.float32)]
  layers = [layer(n, 'Convolution', b) for n, b in blobs.items()]
  path = write(tmp_path / 'broken.caffemodel', net(layers))
  _, shapes = target(ALEXNET)
  with pytest.raises(importers.WeightMismatchError) as e:
    importers.import_caffe('alexnet_lrn', path, shapes)
  msg = str(e.value)
  assert path in msg and "'alexnet_lrn'" in msg
  for name in ('features/conv3/kernel (from conv3.blobs[0]): (3, 3, 128, 384) '
               'vs (3, 3, 256, 384)', 'features/conv5/bias', '?/conv6.blobs[0]',
               'head/fc6/kernel', 'head/fc7/bias', 'head/out/kernel'):
    assert name in msg, name
  assert 'features/conv4' not in msg and 'features/conv3/bias' not in msg

  # Files that are not weights fail with their name.
  for data, match in [(b'\x0a\x03abc', 'holds no layer with weights'),
                      (b'\xff\xff\xff', 'not a binary Caffe NetParameter')]:
    write(path, [data])
    with pytest.raises(ValueError, match=match) as e:
      caffe.read_caffemodel(path)
    assert path in str(e.value)
  short = ld(7, packed_varints(1, (4, 2))) + packed(5, np.zeros(7), '<f4')
  with pytest.raises(ValueError, match=r"'conv1' blob 0.*\(4, 2\) needs 8"):
    caffe.parse_net(b''.join(ld(100, string(1, 'conv1') + ld(7, short))))
  with pytest.raises(ValueError, match='No Caffe importer'):
    importers.import_caffe('alexnet', {}, shapes)


def test_config_init_caffe(alexnet):
  _, files = alexnet
  _, shapes = target(ALEXNET, num_outputs=7)
  fresh = jax.tree.map(lambda s: np.full(s.shape, 3.0, s.dtype), shapes)
  c = common.base_config()
  c.model = ml_collections.ConfigDict({'name': 'alexnet_lrn'})
  c.init.caffe = files['layers']
  c.init.head = 'reinit'
  assert init_lib.has_init(c)
  v = init_lib.initial_variables(c, fresh)
  flat = {'/'.join(k): np.asarray(x) for k, x in partition.flatten(v).items()}
  assert (flat['params/head/out/kernel'] == 3.0).all()  # fresh fc8
  assert not (flat['params/head/fc6/kernel'] == 3.0).any()
  assert not (flat['params/features/conv1/kernel'] == 3.0).any()
  c.init.torchvision = '/somewhere/alexnet.pth'
  with pytest.raises(ValueError, match=r"\['torchvision', 'caffe'\]"):
    init_lib.initial_variables(c, fresh)
