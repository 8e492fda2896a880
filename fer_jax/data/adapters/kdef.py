"""KDEF: KDEF/<AF01>/<AF01ANS>.JPG, expression and angle coded in the name.

Name = session (A|B), sex (F|M), id (2 digits), expression (AF afraid, AN angry,
DI disgusted, HA happy, NE neutral, SA sad, SU surprised; `label_maps.KDEF`),
angle (S straight, HL/HR half, FL/FR full profile); matched case-insensitively.
angles selects the views (default frontal 'S' only). Files whose names do not
match are bad input. subject = sex*100 + id (sessions A and B are one person);
no official split: subjects are split by fractions and seed (split='all').
"""
import os
import re

from fer_jax.data.adapters import base, label_maps

LAYOUT = '  <manual_dir>/[KDEF/]<AF01>/<AF01ANS>.JPG  (4,900 images)'
NAME = re.compile(r'^([AB])([FM])(\d\d)(AF|AN|DI|HA|NE|SA|SU)(S|HL|HR|FL|FR)'
                  r'\.(jpe?g|png)$', re.IGNORECASE)


def kdef(split: str, manual_dir: str, angles=('S',), image_size=None,
         channels: int = 3, fractions=(0.8, 0.1, 0.1), seed: int = 0,
         skip_bad: bool = False):
  root = os.path.join(manual_dir, 'KDEF')
  root = root if os.path.isdir(root) else manual_dir
  if not os.path.isdir(root):
    raise base.missing_layout('kdef', manual_dir, 'KDEF/', LAYOUT)
  angles = {a.upper() for a in angles}
  found = []
  col = base.Collector(skip_bad)
  for d in sorted(os.listdir(root)):
    if not os.path.isdir(os.path.join(root, d)):
      continue
    for fn in sorted(os.listdir(os.path.join(root, d))):
      path = os.path.join(root, d, fn)
      if fn.startswith('.') or not fn.lower().endswith(('.jpg', '.jpeg', '.png')):
        continue
      m = NAME.match(fn)
      if m is None:
        col.bad(path, 'name does not match [AB][FM]NN<expr><angle>.JPG')
        continue
      _, sex, num, expr, angle, _ = (g.upper() for g in m.groups())
      if angle in angles:
        found.append((path, (sex == 'M') * 100 + int(num), label_maps.KDEF[expr]))
  if not found and not col.skipped:
    raise base.missing_layout('kdef', manual_dir, 'KDEF/<AF01>/AF01NES.JPG', LAYOUT)
  keep = base.subject_split([s for _, s, _ in found], split, fractions, seed)
  for path, subject, label in found:
    if subject in keep:
      col.add(where=path, image=path, expression=label, subject=subject)
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('kdef', split, col, domain='lab',
                            image_size=image_size, channels=channels)
