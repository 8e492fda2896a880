"""Canonical label spaces shared by every dataset in fer_jax.

Every source (synthetic or real) yields records in these label spaces; adapters of
real datasets map their own orders into them with explicit tables.
"""

# The 7 basic expressions, in fer_jax's canonical order (AffectNet's order).
EXPRESSIONS = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger')

# Facial action units the synthetic renderer animates (FACS numbers).
AUS = (1, 2, 4, 5, 6, 7, 9, 12, 15, 17, 20, 23, 25, 26)
AU_NAMES = tuple(f'AU{n}' for n in AUS)

# Compound expressions of Du, Tao & Martinez (PNAS 2014), the 15 non-basic ones.
COMPOUND_EXPRESSIONS = (
    'happily_surprised', 'happily_disgusted', 'sadly_fearful', 'sadly_angry',
    'sadly_surprised', 'sadly_disgusted', 'fearfully_angry',
    'fearfully_surprised', 'fearfully_disgusted', 'angrily_surprised',
    'angrily_disgusted', 'disgustedly_surprised', 'appalled', 'hatred', 'awed',
)

DOMAINS = ('lab', 'wild')

# Value stored in an integer label field that the dataset does not annotate.
MISSING = -1

# The 8-class expression space (AffectNet basic8, FER+ and CK+ with contempt):
# the canonical 7, then contempt at index 7. A source that may yield contempt
# declares these names as its `expression_names`; a task trained on it needs 8
# expression outputs.
CONTEMPT = 'contempt'
EXPRESSIONS_WITH_CONTEMPT = EXPRESSIONS + (CONTEMPT,)

# Value of one entry of a record's `aus` / `au_intensity` vector that its
# dataset does not annotate (an AU the dataset does not code, or a per-image
# "not coded" value such as EmotioNet's 999). It marks the AU unknown, to be
# masked out of losses and metrics; it is never a negative (absent) label. A
# known AU is 0 or 1 in `aus` and an intensity in [0, 1] in `au_intensity`.
AU_MISSING = -1.0


def au_known(aus):
  """Per-AU mask (numpy or jax array, any leading shape): True where annotated."""
  return aus >= 0
