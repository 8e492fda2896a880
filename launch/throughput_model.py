"""Expected data-parallel training throughput on 1, 8 and 64 GPUs.

A model, not a measurement: per-GPU compute from a measured single-GPU figure
(launch/bench_backbones.py on the target GPU), communication from the gradient
bytes and the links' bandwidth.

  step time on N GPUs  t(N) = t_c + max(0, t_ar(N) - overlap * t_c)
  t_c                  per-GPU batch / single-GPU img/s (weak scaling: the
                       per-GPU batch stays, the global batch is N x it)
  t_ar(N)              ring all-reduce of the float32 gradients (P params):
                       2 (N - 1) / N x 4 P bytes over the slowest link a
                       ring crosses: NVLink inside a node, the per-GPU
                       network link across nodes (hierarchical all-reduces
                       do better; the ring is the conservative case)
  img/s(N)             N x per-GPU batch / t(N)

`overlap` is the fraction of the backward pass that hides communication (XLA
overlaps the gradient all-reduce with the remaining backward computation,
which is about 2/3 of a step; 0.5 is a middle guess, 0 the pessimistic case).
Input pipelines are assumed to keep up (N x img/s decoded images per second).

  python launch/throughput_model.py                       # the README table
  python launch/throughput_model.py --single alexnet=31985 --overlap 0
"""
import argparse
import dataclasses
from typing import Dict, Sequence

# Parameters (torchvision counts, 1000 classes; tests/models checks that the
# zoo's counts equal them) and the per-GPU batches of launch/bench_backbones.py.
PARAMS = {'alexnet': 61_100_840, 'vgg11_bn': 132_868_840,
          'resnet50': 25_557_032, 'resnet152': 60_192_808,
          'mobilenet_v2': 3_504_872, 'inception_v3': 27_161_264}
BATCH = {'alexnet': 256, 'vgg11_bn': 128, 'resnet50': 256, 'resnet152': 128,
         'mobilenet_v2': 256, 'inception_v3': 128}
# Single-GPU img/s. NOT our measurement: PyTorch 2.11 eager, bf16 autocast,
# channels_last on an H100 80GB, the published reference (the target fer_jax
# must match). Replace with launch/bench_backbones.py's figure on the same GPU.
REFERENCE_H100 = {'alexnet': 31_985, 'vgg11_bn': 3_464, 'resnet50': 3_968,
                  'resnet152': 1_632, 'mobilenet_v2': 6_314,
                  'inception_v3': 2_125}


@dataclasses.dataclass(frozen=True)
class Links:
  """Achievable all-reduce bus bandwidths in bytes/s per GPU."""
  intra_node: float = 360e9   # H100 SXM NVLink 4 (900 GB/s peak; NCCL ~360-450)
  inter_node: float = 45e9    # one 400 Gb/s NDR InfiniBand NIC per GPU (50 GB/s)
  gpus_per_node: int = 8


def allreduce_seconds(params: int, n_gpus: int, links: Links,
                      bytes_per_param: int = 4) -> float:
  """Ring all-reduce time of the gradients over n_gpus."""
  if n_gpus <= 1:
    return 0.0
  bw = links.intra_node if n_gpus <= links.gpus_per_node else links.inter_node
  return 2 * (n_gpus - 1) / n_gpus * bytes_per_param * params / bw


def expected_images_per_second(single_gpu: float, batch: int, params: int,
                               n_gpus: int, links: Links = Links(),
                               overlap: float = 0.5) -> float:
  """Throughput of n_gpus data-parallel GPUs (see the module docstring)."""
  t_compute = batch / single_gpu
  t_comm = allreduce_seconds(params, n_gpus, links)
  return n_gpus * batch / (t_compute + max(0.0, t_comm - overlap * t_compute))


def table(single: Dict[str, float], gpus: Sequence[int], links: Links,
          overlap: float) -> str:
  head = (['model', 'params', 'batch/GPU', 'grad MB']
          + [f'{n} GPU img/s (eff.)' for n in gpus])
  rows = [head, ['---'] * len(head)]
  for name, ips in single.items():
    row = [name, f'{PARAMS[name] / 1e6:.1f} M', str(BATCH[name]),
           f'{4 * PARAMS[name] / 2**20:.0f}']
    for n in gpus:
      x = expected_images_per_second(ips, BATCH[name], PARAMS[name], n, links,
                                     overlap)
      row.append(f'{x:,.0f} ({x / (n * ips):.0%})')
    rows.append(row)
  return '\n'.join('| ' + ' | '.join(r) + ' |' for r in rows)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--single', nargs='*', default=[],
                 help='name=img/s measured on one GPU (default: the issue-3 '
                      'PyTorch H100 reference figures)')
  p.add_argument('--gpus', default='1,8,64')
  p.add_argument('--intra_gbs', type=float, default=Links.intra_node / 1e9)
  p.add_argument('--inter_gbs', type=float, default=Links.inter_node / 1e9)
  p.add_argument('--gpus_per_node', type=int, default=Links.gpus_per_node)
  p.add_argument('--overlap', type=float, default=0.5)
  a = p.parse_args(argv)
  single = dict(REFERENCE_H100)
  for item in a.single:
    name, value = item.split('=')
    if name not in PARAMS:
      raise SystemExit(f'Unknown model {name!r}; known: {", ".join(PARAMS)}')
    single[name] = float(value)
  links = Links(a.intra_gbs * 1e9, a.inter_gbs * 1e9, a.gpus_per_node)
  gpus = [int(n) for n in a.gpus.split(',')]
  print(f'Links: {a.intra_gbs:g} GB/s inside a node of {a.gpus_per_node}, '
        f'{a.inter_gbs:g} GB/s per GPU across nodes; overlap {a.overlap:g}; '
        'float32 gradients, ring all-reduce, per-GPU batch fixed.')
  print(table(single, gpus, links, a.overlap))


if __name__ == '__main__':
  main()
