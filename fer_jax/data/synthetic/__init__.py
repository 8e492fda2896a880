"""The embedded synthetic affect dataset: procedural faces with known ground truth.

    source = SyntheticSource('affectnet_like', 'train', image_size=64)
    record = source[0]   # dict with the keys in RECORD_KEYS

Modules: `face` (renderer: identity + AUs + pose -> image, 68 landmarks, eyes;
`face_params` the identity and pose, `face_geometry` the landmarks,
`face_scene` the in-the-wild nuisances),
`affect` (FACS prototypes, circumplex, per-subject affect styles), `presets`
(PresetSpec, PRESETS), `source` (SyntheticSource, make_record, render_batch).
"""
from fer_jax.data.synthetic.affect import AU_THRESHOLD
from fer_jax.data.synthetic.affect import COMPOUND_AUS
from fer_jax.data.synthetic.affect import EXPRESSION_AUS
from fer_jax.data.synthetic.face import render_face
from fer_jax.data.synthetic.face_params import Identity
from fer_jax.data.synthetic.face_params import Pose
from fer_jax.data.synthetic.face_params import sample_identity
from fer_jax.data.synthetic.face_params import sample_pose
from fer_jax.data.synthetic.face_scene import Scene
from fer_jax.data.synthetic.face_scene import sample_scene
from fer_jax.data.synthetic.presets import PRESETS
from fer_jax.data.synthetic.presets import PresetSpec
from fer_jax.data.synthetic.presets import SPLITS
from fer_jax.data.synthetic.presets import get_preset
from fer_jax.data.synthetic.source import RECORD_KEYS
from fer_jax.data.synthetic.source import SyntheticSource
from fer_jax.data.synthetic.source import make_record
from fer_jax.data.synthetic.source import render_batch
from fer_jax.data.synthetic.source import subject_profile
