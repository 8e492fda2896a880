"""Converted weights into a model's variables: the part every importer shares.

An importer turns its file into {(collection, *flax path): array}, names it
cannot place under ('?', name in the file); `merge` puts that into the target
variables, where every missing, unexpected or wrongly shaped name ends up in
ONE WeightMismatchError. RGB weights into a 1-channel model: the first conv is
summed over its input channels (a gray image g fed as (g, g, g) gives the same
response).
"""
from fer_jax.models import partition


def gray_first_conv(source, target):
  """RGB kernels (kh, kw, 3, O) into 1-channel convs: sum the input channels."""
  out = dict(source)
  for p, w in source.items():
    t = target.get(p)
    if (t is not None and p[-1] == 'kernel' and w.ndim == 4
        and t.shape[2] == 1 and w.shape[2] == 3
        and w.shape[:2] + w.shape[3:] == t.shape[:2] + t.shape[3:]):
      out[p] = w.sum(axis=2, keepdims=True)
  return out


def merge(target_vars, source_flat, strict: bool, head: bool, origin=None):
  """`source_flat` merged into `target_vars`; head=False keeps the target's
  head. `origin` ({flax path: name in the file}) names the offenders."""
  target = partition.flatten(target_vars)
  if not head:  # keep the target's (fresh) head, e.g. other num_outputs
    source_flat = {p: v for p, v in source_flat.items()
                   if len(p) < 2 or p[1] != 'head'}
  source_flat = gray_first_conv(source_flat, target)
  merged = partition.merge_flat(
      target, source_flat, strict,
      ignore_missing=(lambda p: len(p) > 1 and p[1] == 'head') if not head
      else (lambda p: False), origin=origin)
  return partition.unflatten(merged)
