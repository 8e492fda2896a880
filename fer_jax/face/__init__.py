"""Face detection (OpenCV Haar cascades) and the papers' face crops."""
from fer_jax.face.detect import Face, NoEyesError, NoFaceError, crop_face, detect_face
