"""SEMAINE: session videos with per-frame valence/arousal in [-1, 1].

UNVERIFIED FORMAT. No source reachable to the project shows how SEMAINE's
FeelTrace traces (per session, rater and dimension) are laid out on disk. So
this adapter reads one documented table that the user builds from their
copy (or exports from the database's tools), plus the session videos:
  * <manual_dir>/<annotations> (default ANNOTATION_FILE; .csv, .tsv/.txt tab-
    separated, or .xlsx) with a header row:
      SESSION_COLUMN   session id (as in the video path below);
      SUBJECT_COLUMN   optional; the person filmed (default: the session);
      FRAME_COLUMN     video frame number (frame_base: 0 = first frame) or
      TIME_COLUMN      seconds from the video start (frame = round(t * fps));
      VALENCE_COLUMNS / AROUSAL_COLUMNS   one or more rater columns each
                       (e.g. valence_R1, valence_R2), averaged over the raters
                       that gave a value; empty = not rated.
    Ratings outside va_range ([-1, 1]) are bad input unless clip_va=True.
  * Videos: video_glob with {session} (default 'Sessions/{session}/*.avi'),
    matching exactly one file per session (several matches are bad input
    listing them: narrow the glob, e.g. to the user camera's file name).
Every column name is a module constant (and an argument); a missing column
raises an error naming the expected and the found columns. frame_step keeps
every n-th annotated row of a session (paper 002 kept 1 in 10). Records:
valence/arousal (has_va), subject, clip = session index, frame. No official
split: subjects are split by fractions and seed (split='all').
"""
import collections
import glob
import os

from fer_jax.data.adapters import base, shared, tables, va_video, video

ANNOTATION_FILE = 'semaine_va.csv'
SESSION_COLUMN = 'session'
SUBJECT_COLUMN = 'subject'
FRAME_COLUMN = 'frame'
TIME_COLUMN = 'time'
VALENCE_COLUMNS = r'valence([ _-].*)?'
AROUSAL_COLUMNS = r'arousal([ _-].*)?'
VIDEO_GLOB = 'Sessions/{session}/*.avi'
LAYOUT = (f'  <manual_dir>/{ANNOTATION_FILE}  (columns {SESSION_COLUMN}, '
          f'[{SUBJECT_COLUMN}], {FRAME_COLUMN} or {TIME_COLUMN}, valence_<rater>..., '
          'arousal_<rater>...)\n'
          f'  <manual_dir>/{VIDEO_GLOB}  (one video per session)')


def semaine(split: str, manual_dir: str, annotations: str = ANNOTATION_FILE,
            video_glob: str = VIDEO_GLOB, frame_base: int = 0, frame_step: int = 1,
            va_range=(-1.0, 1.0), clip_va: bool = False, image_size=None,
            channels: int = 3, fractions=(0.8, 0.1, 0.1), seed: int = 0,
            skip_bad: bool = False):
  """SEMAINE frames with averaged valence/arousal (see module doc)."""
  path = annotations if os.path.isabs(annotations) else os.path.join(
      manual_dir, annotations)
  base.require(path, 'semaine', manual_dir, LAYOUT)
  rows = tables.read_rows(path)
  first = next(rows, None)
  if first is None:
    raise shared.AdapterError(f'{path}: empty annotation table')
  cols = tables.columns(first[1], first[0], exact={
      'session': SESSION_COLUMN, 'subject': SUBJECT_COLUMN, 'frame': FRAME_COLUMN,
      'time': TIME_COLUMN}, patterns={'v': VALENCE_COLUMNS, 'a': AROUSAL_COLUMNS},
                        optional=('subject', 'frame', 'time'))
  if cols['frame'] is None and cols['time'] is None:
    raise shared.AdapterError(f'{first[0]}: expected column {FRAME_COLUMN!r} or '
                            f'{TIME_COLUMN!r}; found {first[1]}')
  pos = cols['frame'] if cols['frame'] is not None else cols['time']
  col = base.Collector(skip_bad)
  by_session = collections.defaultdict(list)
  subject_of = {}
  for where, cells in rows:
    if len(cells) <= max(cols['session'], pos):
      col.bad(where, f'row has {len(cells)} fields; expected {len(first[1])}')
      continue
    session = cells[cols['session']].strip()
    at = va_video.number(cells[pos])
    if not session or at is None or at < 0 or (cols['frame'] is not None
                                               and at != int(at)):
      col.bad(where, f'{SESSION_COLUMN} {session!r} / '
              f'{first[1][pos]} {cells[pos]!r} is not a session id and a '
              f'{"frame number" if cols["frame"] is not None else "time (s)"}')
      continue
    va = va_video.row_va(cells, cols, va_range, clip_va, col, where)
    if va is None:
      continue
    subject = (cells[cols['subject']].strip() if cols['subject'] is not None
               and cols['subject'] < len(cells) else '') or session
    subject_of.setdefault(session, subject)
    by_session[session].append((at, where, *va))
  subjects = sorted(set(subject_of.values()))
  keep = base.subject_split(subjects, split, fractions, seed)
  clip_of = {s: i for i, s in enumerate(sorted(by_session))}
  for session in sorted(by_session):
    if subject_of[session] not in keep:
      continue
    pattern = os.path.join(manual_dir, video_glob.format(session=session))
    found = sorted(glob.glob(pattern))
    first_where = by_session[session][0][1]
    if len(found) != 1:
      col.bad(first_where, f'expected one video matching {pattern!r} for session '
              f'{session!r}, found {len(found)}: {found[:5]} (pass video_glob=)')
      continue
    try:
      count, fps = video.probe(found[0])
    except shared.AdapterError as e:
      col.bad(found[0], str(e).split(': ', 1)[-1])
      continue
    if cols['frame'] is None and fps <= 0:
      col.bad(found[0], f'no frame rate reported, needed by the {TIME_COLUMN!r} '
              'column')
      continue
    subject = subject_of[session]
    sid = int(va_video.key(subject)) if va_video.key(subject).isdigit() else (
        base.stable_id(subject))
    rows_s = sorted(by_session[session])
    dups = [w for (t0, w0, *_), (t1, w, *_) in zip(rows_s, rows_s[1:]) if t0 == t1]
    for w in dups:
      col.bad(w, f'session {session!r} {first[1][pos]} annotated twice')
    rows_s = [r for r in rows_s if r[1] not in set(dups)]
    for at, where, v, a in rows_s[::max(1, int(frame_step))]:
      frame = (int(at) - frame_base if cols['frame'] is not None
               else int(round(at * fps)))
      if frame < 0 or (count and frame >= count):
        col.bad(where, f'frame {frame} outside the {count} frames of {found[0]}')
        continue
      col.add(where=where, image=shared.VideoFrame(found[0], frame), valence=v,
              arousal=a, has_va=True, subject=sid, clip=clip_of[session],
              frame=frame)
  return base.AdapterSource('semaine', split, col, domain='lab',
                            image_size=image_size, channels=channels, groups=('va',))
