"""SFEW 2.0 aligned faces: <Split>/<Split>_Aligned_Faces/<Class>/*.png.

train <- Train/Train_Aligned_Faces, validation <- Val/Val_Aligned_Faces (or
Val_Aligned_Faces_new). Test labels are not public, so test is an empty source
(papers report on validation). Class folders Angry, Disgust, Fear, Happy,
Neutral, Sad, Surprise (`label_maps.SFEW`); any other folder is bad input.
"""
import os

from fer_jax.data.adapters import base, label_maps

LAYOUT = ('  <manual_dir>/Train/Train_Aligned_Faces/<Class>/*.png\n'
          '  <manual_dir>/Val/Val_Aligned_Faces[_new]/<Class>/*.png\n'
          '  Class in Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise')
DIRS = {'train': ('Train/Train_Aligned_Faces', 'Train_Aligned_Faces'),
        'validation': ('Val/Val_Aligned_Faces', 'Val/Val_Aligned_Faces_new',
                       'Val_Aligned_Faces', 'Val_Aligned_Faces_new')}


def sfew(split: str, manual_dir: str, image_size=None, channels: int = 3,
         skip_bad: bool = False):
  base.check_split(split)
  col = base.Collector(skip_bad)
  if split in DIRS:
    dirs = [os.path.join(manual_dir, d) for d in DIRS[split]]
    root = next((d for d in dirs if os.path.isdir(d)), None)
    if root is None:
      raise base.missing_layout('sfew', manual_dir, DIRS[split][0], LAYOUT)
    for cls in sorted(os.listdir(root)):
      cdir = os.path.join(root, cls)
      if not os.path.isdir(cdir):
        continue
      if cls not in label_maps.SFEW:
        col.bad(cdir, f'class folder {cls!r} is not one of {sorted(label_maps.SFEW)}')
        continue
      for fn in sorted(os.listdir(cdir)):
        if fn.lower().endswith(('.png', '.jpg')):
          p = os.path.join(cdir, fn)
          col.add(where=p, image=p, expression=label_maps.SFEW[cls])
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('sfew', split, col, domain='wild',
                            image_size=image_size, channels=channels)
