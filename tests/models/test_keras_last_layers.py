"""'keras_last:N': the weights of the last N layers of Keras' MobileNetV2, as
paper 004 unfreezes them, checked against Keras' own layer list (the fixture
written by launch/make_keras_layer_fixture.py with keras 3)."""
import json
import os
import re

import jax
import jax.numpy as jnp
import pytest

from fer_jax.models import get_model
from fer_jax.models import mobilenet_v2
from fer_jax.models import partition

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures',
                       'keras_mobilenet_v2_layers.json')
RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


@pytest.fixture(scope='module')
def keras_layers():
  with open(FIXTURE) as f:
    return json.load(f)['layers']


@pytest.fixture(scope='module')
def variables():
  model = get_model('mobilenet_v2', num_outputs=7, head='zaitouny')
  x = jnp.zeros((1, 224, 224, 3))
  return jax.eval_shape(lambda: model.init(RNGS, x))


def _our_layer(keras_name):
  """Keras' layer name -> our layer path, written out from the two naming
  schemes (not from mobilenet_v2.keras_layers)."""
  fixed = {'Conv1': 'stem_conv', 'bn_Conv1': 'stem_bn', 'Conv_1': 'last_conv',
           'Conv_1_bn': 'last_bn'}
  if keras_name in fixed:
    return 'features/' + fixed[keras_name]
  m = re.fullmatch(r'(?:block_(\d+)|expanded_conv)_(expand|depthwise|project)'
                   r'(_BN)?', keras_name)
  assert m, keras_name
  kind = {'expand': 'expand', 'depthwise': 'dw', 'project': 'project'}[m[2]]
  return f'features/block{int(m[1] or 0) + 1}/{kind}_{"bn" if m[3] else "conv"}'


# Keras weight -> (our collection, leaf, our shape from Keras' shape). Keras 3
# names a depthwise kernel 'kernel' (Keras 2: 'depthwise_kernel'), shaped
# (kh, kw, C, 1); ours is a grouped conv's (kh, kw, 1, C).
_DEPTHWISE = ('params', 'kernel', lambda s: [s[0], s[1], s[3], s[2]])
_WEIGHTS = {'kernel': ('params', 'kernel', lambda s: s),
            'depthwise_kernel': _DEPTHWISE,
            'gamma': ('params', 'scale', lambda s: s),
            'beta': ('params', 'bias', lambda s: s),
            'moving_mean': ('batch_stats', 'mean', lambda s: s),
            'moving_variance': ('batch_stats', 'var', lambda s: s)}


def _keras_weights(layers):
  """{(collection, our leaf path): our shape} of these Keras layers' weights."""
  out = {}
  for layer in layers:
    for name, shape in layer['weights']:
      coll, leaf, fn = (_DEPTHWISE if layer['class'] == 'DepthwiseConv2D'
                        else _WEIGHTS[name])
      out[(coll, f'{_our_layer(layer["name"])}/{leaf}')] = tuple(fn(shape))
  return out


def _flat(tree):
  return {'/'.join(p): v for p, v in partition.flatten(tree).items()}


def test_keras_layer_list_is_keras_own(keras_layers):
  assert [(n, c) for n, c, _ in mobilenet_v2.keras_layers()] == [
      (l['name'], l['class']) for l in keras_layers]
  assert len(keras_layers) == 154


def test_every_keras_weight_is_one_of_ours_with_its_shape(keras_layers,
                                                          variables):
  ours = {(coll, path): tuple(v.shape) for coll in ('params', 'batch_stats')
          for path, v in _flat(variables[coll]).items()
          if path.startswith('features/')}
  assert _keras_weights(keras_layers) == ours


def test_keras_last_56_unfreezes_the_weights_of_the_last_56_keras_layers(
    keras_layers, variables):
  params = variables['params']
  mask = _flat(partition.trainable_mask(params, 'keras_last:56'))
  expect = {p for coll, p in _keras_weights(keras_layers[-56:])
            if coll == 'params'}
  expect |= {p for p in mask if p.startswith('head/')}
  assert {p for p, m in mask.items() if m} == expect
  # Keras' blocks 11-16 and the last conv: 38 weighted layers of our 104,
  # where 'last:56' (weighted layers only) would take 56.
  chosen = {p.rsplit('/', 1)[0] for p in expect if p.startswith('features/')}
  assert len(chosen) == 38
  assert min(chosen) == 'features/block12/dw_bn'
  # Keras-style frozen BatchNorm: exactly the BatchNorm layers before them.
  frozen = set(partition.frozen_batchnorm_layers(
      partition.trainable_mask(params, 'keras_last:56'),
      variables['batch_stats']))
  keras_bn = {_our_layer(l['name']) for l in keras_layers
              if l['class'] == 'BatchNormalization'}
  last_bn = {_our_layer(l['name']) for l in keras_layers[-56:]
             if l['class'] == 'BatchNormalization'}
  assert frozen == keras_bn - last_bn and len(last_bn) == 19


def test_keras_last_counts_weightless_layers(keras_layers, variables):
  params = variables['params']
  def trained(spec):
    return {p.rsplit('/', 1)[0] for p, m in
            _flat(partition.trainable_mask(params, spec)).items()
            if m and p.startswith('features/')}
  # The last 3 Keras layers are Conv_1, Conv_1_bn, out_relu: 2 weighted ones;
  # one more reaches block_16_project_BN.
  assert trained('keras_last:1') == set()
  assert trained('keras_last:3') == {'features/last_conv', 'features/last_bn'}
  assert trained('keras_last:4') == {'features/last_conv', 'features/last_bn',
                                     'features/block17/project_bn'}
  assert len(trained('keras_last:154')) == 104
  assert trained('keras_last:0') == set()


def test_keras_last_refuses_nets_without_a_keras_list_and_bad_counts(variables):
  resnet = jax.eval_shape(
      lambda: get_model('resnet32', num_outputs=7).init(
          RNGS, jnp.zeros((1, 32, 32, 3))))['params']
  with pytest.raises(ValueError, match='mobilenet_v2'):
    partition.trainable_mask(resnet, 'keras_last:56')
  for bad in ('keras_last:x', 'keras_last:-1', 'keras_last:'):
    with pytest.raises(ValueError, match='whole number'):
      partition.trainable_mask(variables['params'], bad)
