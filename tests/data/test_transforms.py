"""Image transforms and face crops against hand-computed expectations."""
import numpy as np
import pytest

from fer_jax.data import crops
from fer_jax.data import transforms as T


def _rng(seed=0):
  return np.random.default_rng(seed)


def _dot(h, w, x, y, value=255):
  img = np.zeros((h, w, 1), np.uint8)
  img[y, x] = value
  return img


def _where(img):
  """(x, y) of the single brightest pixel."""
  y, x = np.unravel_index(np.argmax(img[..., 0]), img.shape[:2])
  return int(x), int(y)


# ------------------------------------------------------------------ colour


def test_to_gray_bt601():
  red = np.zeros((2, 3, 3), np.uint8)
  red[..., 0] = 255
  gray = T.to_gray(red)
  assert gray.shape == (2, 3, 1) and gray.dtype == np.uint8
  assert np.all(gray == round(0.299 * 255))  # 76.245 -> 76
  green = np.zeros((1, 1, 3), np.float32)
  green[..., 1] = 1.
  np.testing.assert_allclose(T.to_gray(green), [[[0.587]]], atol=1e-3)


def test_channel_conversions_keep_3d():
  gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
  rgb = T.to_rgb(gray)
  assert rgb.shape == (2, 3, 3)
  np.testing.assert_array_equal(rgb[..., 2], gray)
  assert T.to_channels(rgb, 1).shape == (2, 3, 1)
  np.testing.assert_array_equal(T.to_channels(rgb, 1)[..., 0], gray)
  assert T.to_channels(gray, 1).shape == (2, 3, 1)
  with pytest.raises(ValueError):
    T.to_channels(rgb, 2)


# ------------------------------------------------------------ value scaling


def test_minmax_stretch_hand_values():
  img = np.array([[10, 20], [30, 50]], np.uint8)
  # (x - 10) * 255 / 40.
  np.testing.assert_allclose(T.minmax_stretch(img)[..., 0],
                             [[0., 63.75], [127.5, 255.]], rtol=1e-6)
  const = T.minmax_stretch(np.full((3, 3, 3), 7, np.uint8))
  assert const.dtype == np.float32 and np.all(const == 0)


def test_normalize():
  img = np.array([[0, 51, 255]], np.uint8)
  # (x / 255 - .5) / .5: 0 -> -1, 51 -> (.2 - .5) / .5 = -.6, 255 -> 1.
  out = T.normalize(img)
  assert out.dtype == np.float32 and out.shape == (1, 3, 1)
  np.testing.assert_allclose(out[..., 0], [[-1., -0.6, 1.]], rtol=1e-6)
  rgb = np.full((1, 1, 3), 255, np.uint8)
  np.testing.assert_allclose(
      T.normalize(rgb, mean=[0., .5, 1.], std=[1., .25, 2.]),
      [[[1., 2., 0.]]])


def test_featurewise_stats_matches_numpy():
  rng = _rng()
  images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for h, w in ((4, 5), (6, 3), (2, 2))]
  flat = np.concatenate([im.reshape(-1, 3) for im in images]) / 255.
  mean, std = T.featurewise_stats(images)
  np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-6)
  np.testing.assert_allclose(std, flat.std(0), rtol=1e-5)
  batch = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
  mean, std = T.featurewise_stats(batch)
  np.testing.assert_allclose(mean, (batch / 255.).mean((0, 1, 2)), rtol=1e-6)
  normed = np.stack([T.normalize(im, mean, std) for im in batch])
  np.testing.assert_allclose(normed.mean((0, 1, 2)), 0., atol=1e-5)
  np.testing.assert_allclose(normed.std((0, 1, 2)), 1., rtol=1e-5)


# ----------------------------------------------------------------- resizing


def test_resize_area_and_landmarks():
  img = np.array([[0, 4, 8, 8],
                  [4, 0, 8, 8],
                  [1, 1, 2, 2],
                  [1, 1, 2, 6]], np.float32)
  out = T.resize(img, 2)
  # INTER_AREA halving = 2x2 block means.
  np.testing.assert_allclose(out[..., 0], [[2., 8.], [1., 3.]])
  big, pts = T.resize(img, (8, 6), landmarks=[[0., 0.], [3., 3.]])
  assert big.shape == (8, 6, 1)
  # x' = (x + .5) * 6/4 - .5, y' = (y + .5) * 8/4 - .5.
  np.testing.assert_allclose(pts, [[0.25, 0.5], [4.75, 6.5]])


# ------------------------------------------------------------------ flips


def test_hflip():
  img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
  np.testing.assert_array_equal(T.hflip(img), img[:, ::-1])
  np.testing.assert_array_equal(T.hflip(T.hflip(img)), img)
  _, pts = T.hflip(img, landmarks=[[0., 1.], [1.5, 0.]])
  np.testing.assert_allclose(pts, [[3., 1.], [1.5, 0.]])  # x -> 4 - 1 - x


def test_random_hflip_probability():
  img = np.arange(12, dtype=np.uint8).reshape(3, 4)
  flips = [not np.array_equal(T.random_hflip(img, _rng(s)), img[..., None])
           for s in range(200)]
  assert 70 < sum(flips) < 130
  assert not any(not np.array_equal(T.random_hflip(img, _rng(s), p=0.),
                                    img[..., None]) for s in range(20))


# --------------------------------------------------------------- rotation


def test_rotation_zero_is_identity():
  img = _rng().integers(0, 256, (7, 9, 3), dtype=np.uint8)
  np.testing.assert_array_equal(T.rotate(img, 0.), img)
  out = T.random_rotation(img, _rng(), max_degrees=0.)
  np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize('size', [9, 8])
def test_rotation_90_maps_points_and_pixels(size):
  # Centre c = (size - 1) / 2. +90 deg is counter-clockwise on screen:
  # (x, y) -> (c + (y - c), c - (x - c)), i.e. right of centre goes up.
  c = (size - 1) / 2
  for x, y in ((6, 4), (4, 1), (5, 3)):
    ex, ey = c + (y - c), c - (x - c)
    img = _dot(size, size, x, y)
    out, pts = T.rotate(img, 90., landmarks=[[x, y]], border='constant')
    np.testing.assert_allclose(pts, [[ex, ey]], atol=1e-5)
    assert _where(out) == (ex, ey)
    assert out[int(ey), int(ex), 0] == 255


def test_random_rotation_within_range_and_landmarks_follow():
  img = _dot(31, 31, 25, 15)  # 10 px right of the centre
  for seed in range(5):
    out, pts = T.random_rotation(img, _rng(seed), 45., landmarks=[[25., 15.]],
                                 border='constant')
    # The landmark stays 10 px from the centre, at most 45 deg above/below.
    dx, dy = pts[0] - 15.
    assert np.hypot(dx, dy) == pytest.approx(10., abs=1e-4)
    assert abs(np.degrees(np.arctan2(-dy, dx))) <= 45. + 1e-6
    # The bright pixel lands next to the landmark (bilinear spreads it).
    bx, by = _where(out)
    assert abs(bx - pts[0, 0]) <= 1 and abs(by - pts[0, 1]) <= 1


# ------------------------------------------------------------------ shifts


def test_shift_exact():
  out, pts = T.shift(_dot(10, 12, 3, 4), dx=5, dy=-2, landmarks=[[3., 4.]],
                     border='constant')
  assert _where(out) == (8, 2) and out[2, 8, 0] == 255
  assert out.sum() == 255
  np.testing.assert_allclose(pts, [[8., 2.]])


def test_random_shift_moves_dot_by_sampled_offset():
  img = _dot(20, 30, 15, 10)
  offsets = set()
  for seed in range(20):
    out, pts = T.random_shift(img, _rng(seed), 0.2, landmarks=[[15., 10.]],
                              border='constant')
    x, y = _where(out)
    dx, dy = x - 15, y - 10
    assert out[y, x, 0] == 255 and out.sum() == 255  # exact whole-pixel move
    assert abs(dx) <= 6 and abs(dy) <= 4  # floor(.2 * 30), floor(.2 * 20)
    np.testing.assert_allclose(pts, [[x, y]])
    offsets.add((dx, dy))
  assert len(offsets) > 5


def test_shift_borders():
  img = np.arange(1, 5, dtype=np.uint8).reshape(1, 4)
  np.testing.assert_array_equal(
      T.shift(img, 2, 0, border='constant')[0, :, 0], [0, 0, 1, 2])
  np.testing.assert_array_equal(
      T.shift(img, 2, 0, border='nearest')[0, :, 0], [1, 1, 1, 2])
  np.testing.assert_array_equal(
      T.shift(img, 2, 0, border='reflect')[0, :, 0], [2, 1, 1, 2])
  with pytest.raises(ValueError):
    T.shift(img, 1, 0, border='mirror')


# -------------------------------------------------------- pad & random crop


def test_pad_random_crop_is_window_of_padded():
  img = _rng().integers(1, 256, (6, 5, 3), dtype=np.uint8)
  padded = np.pad(img, ((2, 2), (2, 2), (0, 0)))
  windows = set()
  for seed in range(30):
    out, pts = T.pad_random_crop(img, _rng(seed), 2, landmarks=[[0., 0.]])
    assert out.shape == img.shape and out.dtype == img.dtype
    hits = [(oy, ox) for oy in range(5) for ox in range(5)
            if np.array_equal(padded[oy:oy + 6, ox:ox + 5], out)]
    assert len(hits) == 1
    (oy, ox), = hits
    # Source pixel (0, 0) sits at padded (2, 2), i.e. output (2 - ox, 2 - oy).
    np.testing.assert_allclose(pts, [[2 - ox, 2 - oy]])
    windows.add((oy, ox))
  assert len(windows) > 8


# --------------------------------------------------- brightness / contrast


def test_brightness_contrast_range_and_dtype():
  img = _rng().integers(0, 256, (8, 8, 3), dtype=np.uint8)
  out = T.random_brightness_contrast(img, _rng(1), 0.3, 0.3)
  assert out.dtype == np.uint8 and out.shape == img.shape
  f = T.random_brightness_contrast(img.astype(np.float32) / 255., _rng(1),
                                   max_value=1.)
  assert f.dtype == np.float32 and 0. <= f.min() and f.max() <= 1.
  same = T.random_brightness_contrast(img, _rng(0), 0., 0.)
  np.testing.assert_array_equal(same, img)


# ------------------------------------------------------------- determinism


@pytest.mark.parametrize('op', [
    lambda im, r: T.random_hflip(im, r),
    lambda im, r: T.random_rotation(im, r, 45.),
    lambda im, r: T.random_shift(im, r, 0.2),
    lambda im, r: T.pad_random_crop(im, r, 4),
    lambda im, r: T.random_brightness_contrast(im, r),
])
def test_same_seed_same_output(op):
  img = _rng().integers(0, 256, (16, 16, 3), dtype=np.uint8)
  np.testing.assert_array_equal(op(img, _rng(3)), op(img, _rng(3)))
  assert any(not np.array_equal(op(img, _rng(3)), op(img, _rng(s)))
             for s in range(4, 10))
  gray = op(img[..., :1], _rng(3))
  assert gray.shape == (16, 16, 1)


# ================================================================== crops


def test_crop_box_inside_and_outside():
  img = _rng().integers(0, 256, (10, 12, 3), dtype=np.uint8)
  np.testing.assert_array_equal(crops.crop_box(img, (2, 3, 7, 9)),
                                img[3:9, 2:7])
  out = crops.crop_box(img, (-2, -1, 4, 3))  # leaves the top-left corner
  assert out.shape == (4, 6, 3)
  np.testing.assert_array_equal(out[1:, 2:], img[:3, :4])
  assert np.all(out[0] == 0) and np.all(out[:, :2] == 0)
  # Scaling a box 2x: landmarks at pixel centres map with the box.
  _, pts = crops.crop_box(img, (2, 2, 6, 6), 8, landmarks=[[2., 2.], [5., 5.]])
  # x' = (x + .5 - 2) * 2 - .5: 2 -> .5, 5 -> 6.5.
  np.testing.assert_allclose(pts, [[0.5, 0.5], [6.5, 6.5]])


def test_warp_antialiases_when_shrinking():
  checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.float32)
  out = crops.crop_box(checker, (0, 0, 64, 64), 16)
  np.testing.assert_allclose(out, 127.5, atol=1.)


def test_landmark_box_crop():
  img = _rng().integers(0, 256, (60, 50, 3), dtype=np.uint8)
  lm = np.array([[10., 20.], [29., 20.], [10., 39.], [20., 30.]])
  # Tight box covers the extreme pixels: x 10..29, y 20..39 -> (10, 20, 30, 40).
  assert crops.landmark_box(lm) == (10., 20., 30., 40.)
  out, pts = crops.landmark_box_crop(img, lm, 20, return_landmarks=True)
  np.testing.assert_array_equal(out, img[20:40, 10:30])
  np.testing.assert_allclose(pts, [[0, 0], [19, 0], [0, 19], [10, 10]])
  # margin .5 grows each side by half the 20 px width/height.
  assert crops.landmark_box(lm, 0.5) == (0., 10., 40., 50.)
  # Two points on a row: box (10, 20, 30, 21), squared about y = 20.5.
  assert crops.landmark_box(lm[:2], square=True) == (10., 10.5, 30., 30.5)
  assert crops.landmark_box_crop(img, lm, (32, 24), 0.1).shape == (32, 24, 3)


def _blob_centroid(img, x, y, r=6):
  """Intensity centroid in a window around (x, y)."""
  ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]]
  win = (abs(xs - x) <= r) & (abs(ys - y) <= r)
  w = img[..., 0].astype(np.float64) * win
  return (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()


def test_align_by_eyes_levels_eyes_at_box_coordinates():
  # Two gaussian dots at tilted eye positions in a 200x200 image.
  eyes = np.array([[70., 90.], [130., 110.]])
  ys, xs = np.mgrid[0:200, 0:200]
  img = np.zeros((200, 200), np.float32)
  for ex, ey in eyes:
    img += 255. * np.exp(-((xs - ex) ** 2 + (ys - ey) ** 2) / (2 * 2.5 ** 2))
  out, pts = crops.align_by_eyes(img, eyes, 100, landmarks=eyes)
  assert out.shape == (100, 100, 1)
  # Box in e2e units about the eye midpoint: half width .5 + .25 + .62 = 1.37,
  # top .9, height .9 + 1.35 = 2.25. Pixel-centre output of a box point u:
  # (u - box start) / box size * 100 - .5. Eyes at -+.5:
  #   x_left = .87 / 2.74 * 100 - .5 = 31.25, x_right = 1.87 / 2.74 * 100 - .5
  #   y = .9 / 2.25 * 100 - .5 = 39.5 for both.
  expected = np.array([[87 / 2.74 - .5, 39.5], [187 / 2.74 - .5, 39.5]])
  np.testing.assert_allclose(pts, expected, atol=1e-4)
  for (ex, ey) in expected:
    cx, cy = _blob_centroid(out, ex, ey)
    assert abs(cx - ex) < 0.35 and abs(cy - ey) < 0.35
  # Without the corner approximation the box is 2.24 x 2.25 e2e.
  _, pts0 = crops.align_by_eyes(img, eyes, 100, landmarks=eyes,
                                corner_offset=0.)
  np.testing.assert_allclose(pts0[:, 0], [62 / 2.24 - .5, 162 / 2.24 - .5],
                             atol=1e-4)


def test_align_by_eyes_level_input_is_a_box_crop():
  # Level eyes, e2e = 20, corner_offset 0: the box is a plain crop.
  img = _rng().integers(0, 256, (120, 100, 3), dtype=np.uint8)
  eyes = [[40., 50.], [60., 50.]]
  # Half width (.5 + .62) * 20 = 22.4 about x = 50, top 18, bottom 27 about
  # y = 50; box edges in pixel-edge coords are +.5 of those.
  box = (50.5 - 22.4, 50.5 - 18., 50.5 + 22.4, 50.5 + 27.)
  a = crops.align_by_eyes(img, eyes, (45, 44), corner_offset=0.)
  b = crops.crop_box(img, box, (45, 44))
  assert a.shape == b.shape == (45, 44, 3)
  np.testing.assert_allclose(a.astype(float), b.astype(float), atol=1.)
