"""AMIGOS: frontal face videos with the external annotators' valence/arousal.

UNVERIFIED LAYOUT. The project has not seen a real copy. What follows is taken
from the dataset's readme and from one public loader; every name is a module
constant or an argument, and a mismatch says what was expected and what was
found. Check these against your copy:
  * Annotations: External_Annotations.xlsx (or a .csv export of it), found
    anywhere under manual_dir (or annotations=<path>). It has one row per
    (participant, video, 20-second segment), with columns UserID, VideoID,
    Segment_Index and Valence_Annotator_1..3 / Arousal_Annotator_1..3 (the
    column names come from the public loader). Ratings are in [-1, 1]; that
    loader clips a few values just outside the range, so use clip_va=True to
    do the same (the default treats them as bad input). Each dimension is the
    mean over the annotators that rated it; a row where no annotator rated
    either dimension is dropped (dropped['no_va']).
  * Segment s covers seconds [(s - segment_base) * segment_seconds, + 20).
    segment_base='auto' takes the smallest Segment_Index in the table (0 or 1).
  * Videos: the frontal face videos (.mov/.mp4/.avi...) anywhere under
    manual_dir. Each file name must fully match video_regex, whose groups
    `user` and `video` match UserID and VideoID ('07' = '7'). The default
    VIDEO_REGEX (P<user>_<video>_face.<ext>) is a guess: pass the pattern of
    your copy. An annotated (user, video) with no such file is bad input, and
    the error lists a few of the video names that were found.
Frames: one every sample_every seconds (4, as paper 000) inside each segment,
read with OpenCV at round(t * fps). A time past the video's end is dropped
(dropped['past_video_end']). Records: valence/arousal (has_va), subject =
UserID, clip = the (user, video) pair's index, frame = the video frame.
No official split: subjects are split by fractions and seed (split='all').
"""
import collections
import math
import os
import re

from fer_jax.data.adapters import base, shared, tables, va_video

ANNOTATION_FILES = ('External_Annotations.xlsx', 'External_Annotations.csv')
USER_COLUMN = 'UserID'
VIDEO_COLUMN = 'VideoID'
SEGMENT_COLUMN = 'Segment_Index'
VALENCE_COLUMNS = r'Valence_Annotator_\d+'
AROUSAL_COLUMNS = r'Arousal_Annotator_\d+'
SEGMENT_SECONDS = 20.0
VIDEO_REGEX = r'P0*(?P<user>\d+)_(?P<video>[A-Za-z0-9]+)_face\.\w+'
LAYOUT = (f'  <manual_dir>/**/{ANNOTATION_FILES[0]}  (columns {USER_COLUMN}, '
          f'{VIDEO_COLUMN}, {SEGMENT_COLUMN}, Valence_Annotator_1.., '
          'Arousal_Annotator_1..)\n'
          '  <manual_dir>/**/<face video>  named as video_regex (default '
          f'{VIDEO_REGEX})')


def _find_annotations(manual_dir, annotations):
  if annotations is not None:
    path = annotations if os.path.isabs(annotations) else os.path.join(
        manual_dir, annotations)
    return base.require(path, 'amigos', manual_dir, LAYOUT)
  for root, dirs, files in os.walk(manual_dir):
    dirs.sort()
    for name in ANNOTATION_FILES:
      if name in files:
        return os.path.join(root, name)
  raise base.missing_layout('amigos', manual_dir, ANNOTATION_FILES[0], LAYOUT)


def amigos(split: str, manual_dir: str, annotations=None,
           video_regex: str = VIDEO_REGEX, segment_seconds: float = SEGMENT_SECONDS,
           segment_base='auto', sample_every: float = 4.0, va_range=(-1.0, 1.0),
           clip_va: bool = False, image_size=None, channels: int = 3,
           fractions=(0.8, 0.1, 0.1), seed: int = 0, skip_bad: bool = False):
  """AMIGOS frames with averaged external valence/arousal (see module doc)."""
  if not os.path.isdir(manual_dir):
    raise base.missing_layout('amigos', manual_dir, '.', LAYOUT)
  if sample_every <= 0 or segment_seconds <= 0:
    raise ValueError('sample_every and segment_seconds must be > 0')
  if set(re.compile(video_regex).groupindex) != {'user', 'video'}:
    raise ValueError(f'video_regex needs exactly the named groups (?P<user>...) and '
                     f'(?P<video>...), got {video_regex!r}')
  path = _find_annotations(manual_dir, annotations)
  rows = tables.read_rows(path)
  first = next(rows, None)
  if first is None:
    raise shared.AdapterError(f'{path}: empty annotation table')
  cols = tables.columns(first[1], first[0], exact={
      'user': USER_COLUMN, 'video': VIDEO_COLUMN, 'segment': SEGMENT_COLUMN},
                        patterns={'v': VALENCE_COLUMNS, 'a': AROUSAL_COLUMNS})
  col = base.Collector(skip_bad)
  segments = {}  # (user, video, segment) -> (where, valence, arousal)
  shown = {}  # (user, video) keys -> the ids as written in the table
  for where, cells in rows:
    need = max(cols['user'], cols['video'], cols['segment'])
    if len(cells) <= need:
      col.bad(where, f'row has {len(cells)} fields; the id columns need {need + 1}')
      continue
    user, vid = va_video.key(cells[cols['user']]), va_video.key(cells[cols['video']])
    seg = va_video.number(cells[cols['segment']])
    if not user or not vid or seg is None or seg != int(seg):
      col.bad(where, f'{USER_COLUMN}/{VIDEO_COLUMN}/{SEGMENT_COLUMN} '
              f'{cells[cols["user"]]!r}/{cells[cols["video"]]!r}/'
              f'{cells[cols["segment"]]!r} are not ids and an integer segment')
      continue
    va = va_video.row_va(cells, cols, va_range, clip_va, col, where)
    if va is None:
      continue
    k = (user, vid, int(seg))
    if k in segments:
      col.bad(where, f'segment {k} annotated twice (first at {segments[k][0]})')
      continue
    segments[k] = (where, *va)
    shown.setdefault(k[:2], (cells[cols['user']], cells[cols['video']]))
  if segment_base == 'auto':
    segment_base = min((k[2] for k in segments), default=0)
  videos = va_video.find_videos(manual_dir, video_regex)
  if segments and not videos:
    raise base.missing_layout(
        'amigos', manual_dir, f'videos named as {video_regex!r} (found '
        f'{va_video.some_names(manual_dir) or "no video files"})', LAYOUT)
  users = sorted({k[0] for k in segments}, key=lambda u: (len(u), u))
  keep = base.subject_split(users, split, fractions, seed)
  by_pair = collections.defaultdict(list)
  for k in sorted(segments):
    if k[0] in keep:
      by_pair[k[:2]].append(k)
  meta = va_video.probe_all([videos[p] for p in by_pair if p in videos], col)
  clip_of = {p: i for i, p in enumerate(sorted({k[:2] for k in segments}))}
  for pair, keys in sorted(by_pair.items()):
    vpath = videos.get(pair)
    if vpath is None:
      user, vid = shown[pair]
      col.bad(segments[keys[0]][0], f'no video named as {video_regex!r} for '
              f'{USER_COLUMN} {user}, {VIDEO_COLUMN} {vid} (videos found: '
              f'{va_video.some_names(manual_dir)}...)')
      continue
    if vpath not in meta:
      continue
    count, fps = meta[vpath]
    if fps <= 0:
      col.bad(vpath, 'the video does not report its frame rate (needed to find '
              'the frames of each segment)')
      continue
    for k in keys:
      where, v, a = segments[k]
      t0 = (k[2] - segment_base) * segment_seconds
      for j in range(math.ceil(segment_seconds / sample_every - 1e-9)):
        frame = int(round((t0 + j * sample_every) * fps))
        if frame < 0 or (count and frame >= count):
          col.drop('past_video_end')
          continue
        col.add(where=f'{where}: t={t0 + j * sample_every:g}s', image=shared.VideoFrame(
            vpath, frame), valence=v, arousal=a, has_va=True,
                subject=int(pair[0]) if pair[0].isdigit() else base.stable_id(pair[0]),
                clip=clip_of[pair], frame=frame)
  return base.AdapterSource('amigos', split, col, domain='lab', image_size=image_size,
                            channels=channels, groups=('va',))
