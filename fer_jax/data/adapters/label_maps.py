"""Each dataset's expression order, and its explicit map to `labels.EXPRESSIONS`.

EXPRESSIONS = (neutral, happy, sad, surprise, fear, disgust, anger). A table maps
a dataset's own code to the canonical index; `base.CONTEMPT` (7) stands for
contempt, kept only when a config asks; None = not an expression (dropped).
The names are there so a test can check every table against the canonical names.
"""
from fer_jax.data import labels
from fer_jax.data.adapters.base import CONTEMPT

_CANON = {n: i for i, n in enumerate(labels.EXPRESSIONS)}
_SYNONYMS = {'angry': 'anger', 'happiness': 'happy', 'sadness': 'sad',
             'surprised': 'surprise', 'afraid': 'fear', 'disgusted': 'disgust',
             'angry_': 'anger'}


def canonical(name: str):
  """Canonical index of a dataset's class name (CONTEMPT, or None if none)."""
  n = name.lower()
  n = _SYNONYMS.get(n, n)
  if n == 'contempt':
    return CONTEMPT
  return _CANON.get(n)


# Each dataset's classes in its own code order (index = the dataset's code,
# RAF-DB and SFEW codes start at 1: their entry 0 is code 1).
FER2013_NAMES = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
FERPLUS_NAMES = ('neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust',
                 'fear', 'contempt', 'unknown', 'NF')
AFFECTNET_NAMES = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger',
                   'contempt', 'none', 'uncertain', 'no-face')
RAFDB_NAMES = ('surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger',
               'neutral')  # codes 1..7
CKPLUS_NAMES = ('neutral', 'anger', 'contempt', 'disgust', 'fear', 'happy', 'sadness',
                'surprise')
SFEW_FOLDERS = ('Angry', 'Disgust', 'Fear', 'Happy', 'Sad', 'Surprise', 'Neutral')
KDEF_CODES = {'AF': 'afraid', 'AN': 'angry', 'DI': 'disgusted', 'HA': 'happy',
              'NE': 'neutral', 'SA': 'sad', 'SU': 'surprised'}

# The tables themselves, written out (tests check them against the names).
FER2013 = (6, 5, 4, 1, 2, 3, 0)
FERPLUS = (0, 1, 3, 2, 6, 5, 4, CONTEMPT, None, None)
AFFECTNET = (0, 1, 2, 3, 4, 5, 6, CONTEMPT, None, None, None)
RAFDB = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}
CKPLUS = (0, 6, CONTEMPT, 5, 4, 1, 2, 3)
SFEW = {'Angry': 6, 'Disgust': 5, 'Fear': 4, 'Happy': 1, 'Sad': 2, 'Surprise': 3,
        'Neutral': 0}
KDEF = {'AF': 4, 'AN': 6, 'DI': 5, 'HA': 1, 'NE': 0, 'SA': 2, 'SU': 3}
