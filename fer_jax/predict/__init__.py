"""Affect of every face in images, folders, videos and a webcam.

predictor: loading a model (`load_workdir`, `load_published`), bucketed
  batches, MC dropout.
crops: face crops as a model wants them (box, eyes, landmarks).
stream: the video pipeline (decode -> detect/track -> crop -> batched
  inference -> rows), `predict_video` / `predict_images` (pandas DataFrames).
track: the face tracker (IoU + Hungarian, optical flow) and smoothing.
runs: `run` (the files launch/predict.py writes) and the live camera.
io: readers, row writers, the DataFrame and tracks.csv tables.
draw: annotated frames and per-track timeline plots.
"""
from fer_jax.predict.draw import annotate, draw_circumplex, plot_timeline
from fer_jax.predict.io import (BOX_COLUMNS, IMAGE_EXTS, VIDEO_EXTS, RowWriter,
                                UnreadableError, VideoReader, columns, face_rows,
                                list_inputs, read_image, to_frame, track_summary)
from fer_jax.predict.crops import (CropSpec, Faces, as_rgb_uint8, crop_faces,
                                   crop_of_training, faces_in_image)
from fer_jax.predict.predictor import (FER_CLASSES, PUBLISHED, NonFiniteError,
                                       Output, Predictor, dropout_rates,
                                       load_published, load_workdir)
from fer_jax.predict.runs import Options, Summary, gui_problem, run, run_camera
from fer_jax.predict.stream import (DETECT_EVERY, DETECT_WIDTH, predict_images,
                                    predict_video, stream_frames, video_rows)
from fer_jax.predict.track import Smoother, Tracker, flow_box
