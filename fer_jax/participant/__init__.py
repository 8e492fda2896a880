"""Personalizing a model to one participant from their own video.

video: an embedded `amigos_like` subject rendered as a video file with its
  per-frame ground truth (the oracle labeller's and the learning curve's).
frames: the participant's faces (detected and tracked by the predictor's
  stream) as frozen features of the base model, cached in SUBJECT_DIR.
propose: one round of frames to label, chosen by the study's samplers and
  written as round_N/ (fer_jax/labeling/files.py's contract).
"""
from fer_jax.participant.frames import (FEATURES_FILE, Base, Features,
                                        FrameSource, ProposeError,
                                        cached_features, load_base)
from fer_jax.participant.propose import (GAP_S, SAMPLER_NAMES, Proposal,
                                         gap_frames, propose)
from fer_jax.participant.video import (RenderedSubject, read_truth,
                                       render_subject)
