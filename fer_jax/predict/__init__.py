"""Affect of every face in images, folders, videos and a webcam.

predictor: loading a model (`load_workdir`, `load_published`), face crops,
  bucketed batches, MC dropout.
stream: the video pipeline (decode -> detect/track -> crop -> batched
  inference -> rows), the face tracker, `predict_video` / `predict_images`
  (pandas DataFrames) and `run` (files written by launch/predict.py).
io: readers, row writers, the DataFrame and tracks.csv tables.
draw: annotated frames and per-track timeline plots.
"""
from fer_jax.predict.draw import annotate, draw_circumplex, plot_timeline
from fer_jax.predict.io import (BOX_COLUMNS, IMAGE_EXTS, VIDEO_EXTS, RowWriter,
                                UnreadableError, VideoReader, columns, face_rows,
                                list_inputs, read_image, to_frame, track_summary)
from fer_jax.predict.predictor import (FER_CLASSES, PUBLISHED, CropSpec, Faces,
                                       NonFiniteError, Output, Predictor,
                                       crop_faces, crop_of_training,
                                       dropout_rates, faces_in_image,
                                       load_published, load_workdir)
from fer_jax.predict.stream import (DETECT_EVERY, DETECT_WIDTH, Options,
                                    Smoother, Summary, Tracker, flow_box,
                                    gui_problem, predict_images, predict_video,
                                    run, run_camera, stream_frames, video_rows)
