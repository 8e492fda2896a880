"""Personalizing a model to one participant from their own video.

video: an embedded `amigos_like` subject rendered as a video file with its
  per-frame ground truth (the oracle labeller's and the learning curve's).
frames: the participant's faces (detected and tracked by the predictor's
  stream) as frozen features of the base model, cached in SUBJECT_DIR.
propose: one round of frames to label, chosen by the study's samplers and
  written as round_N/ (fer_jax/labeling/files.py's contract).
fit: the personal model (000's Transfer 100%) on the labels so far, its
  error by k-fold over blocks of time, saved as a workdir for predict.py.
"""
from fer_jax.participant.frames import (FEATURES_FILE, Base, Features,
                                        FrameSource, ProposeError,
                                        cached_features, load_base)
from fer_jax.participant.personal_model import (MODEL_DIR, FitResult, Recipe, fit,
                                     load_fit)
from fer_jax.participant.propose import (GAP_S, SAMPLER_NAMES, Proposal,
                                         gap_frames, propose)
from fer_jax.participant.video import (RenderedSubject, read_truth,
                                       render_subject)
