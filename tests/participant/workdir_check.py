"""Shared check: a personal workdir, read by the predictor (its own face
detection, crop and preprocessing), predicts on the video what the fitted
head gives on the cached features."""
import jax
import numpy as np

from fer_jax.participant import frames as frames_lib
from fer_jax.participant import personal_model
from fer_jax.predict import predictor as predictor_lib
from fer_jax.predict import stream


def assert_predicts_as_the_fitted_head(res, base_spec: str, subject: str,
                                       video: str, atol: float = 2e-5):
  p = predictor_lib.load_workdir(res.workdir, which='latest')
  assert [o.name for o in p.outputs] == ['valence', 'arousal']
  df = stream.predict_video(video, p)
  base = frames_lib.load_base(base_spec)
  feats = frames_lib.cached_features(subject, base, frames_lib.FrameSource(
      video), log=lambda _: None).of_track(None)
  stacked = jax.tree.map(lambda a: np.asarray(a)[None], res.params)
  want = personal_model.predict_heads(personal_model.head_of(base), stacked,
                                      feats.features)[0]
  got = df.set_index('frame').loc[feats.frame, ['valence', 'arousal']].to_numpy()
  np.testing.assert_allclose(got, want, atol=atol)
