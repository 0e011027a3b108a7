"""``digits32``: a 32x32 testbed made from scikit-learn's embedded digits by documented, seeded transforms.

The 8x8 digits are too easy and too small to separate search methods (``tiny`` saturates). Each source digit is
rendered several times on a 32x32 canvas, each time with (in this order, every draw from one seeded
``torch.Generator``, so the data set is the same on every machine):

1. **size**: upsampled to 20x20 (bilinear) in the middle of the canvas;
2. **stroke width**: one of as-is, thicker (3x3 max filter) or thinner (the mean with a 3x3 min filter);
3. **affine**: rotation ±20°, scale 0.75-1.2, shear ±0.25, translation ±12.5 % of the canvas;
4. **clutter**: a fragment of another digit of the same split (12x12, at a random place, at 30-80 % brightness),
   maxed with the image;
5. **contrast and background**: ``background + contrast · image`` with contrast 0.5-1.0, background 0-0.25;
6. **noise**: Gaussian, σ = 0.18; then clipped to [0, 1].

Test images are made only from the held-out test digits (their clutter too), validation images only from the
validation digits, so no source digit is shared between splits. Measured properties are in docs/data.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Canvas side (the images' resolution) and the side the 8x8 digit is upsampled to.
CANVAS = 32
DIGIT = 20
ROTATION_DEG = 20.0
SCALE = (0.75, 1.2)
SHEAR = 0.25
TRANSLATION = 0.25  # of the half-canvas (affine_grid units), i.e. ±12.5 % of the canvas
CLUTTER_SIDES = (12,)
CLUTTER_BRIGHTNESS = (0.3, 0.8)
CONTRAST = (0.5, 1.0)
BACKGROUND = 0.25
NOISE_SIGMA = 0.18


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _paste(side: int, pool: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``[n, 1, CANVAS, CANVAS]``: one random fragment of ``pool`` per image, ``side``x``side`` at a random place,
    at a random brightness."""
    pick = torch.randint(0, pool.shape[0], (n,), generator=generator)
    fragments = F.interpolate(pool[pick], size=(side, side), mode="bilinear", align_corners=False)
    x = torch.randint(0, CANVAS - side + 1, (n,), generator=generator)
    y = torch.randint(0, CANVAS - side + 1, (n,), generator=generator)
    out = torch.zeros(n, 1, CANVAS, CANVAS)
    for i in range(n):
        out[i, :, y[i] : y[i] + side, x[i] : x[i] + side] = fragments[i]
    return out * _uniform(n, *CLUTTER_BRIGHTNESS, generator)[:, None, None, None]


def render(digits: Tensor, labels: Tensor, copies: int, seed: int) -> tuple[Tensor, Tensor]:
    """``copies`` 32x32 renderings of each 8x8 digit of ``digits`` ``[N, 1, 8, 8]`` (values in [0, 1]), clutter
    taken from ``digits`` themselves: images ``[N·copies, 1, 32, 32]`` in [0, 1] and their labels."""
    generator = torch.Generator().manual_seed(seed)
    n = digits.shape[0] * copies
    source = digits.repeat_interleave(copies, 0)
    margin = (CANVAS - DIGIT) // 2
    canvas = F.pad(F.interpolate(source, size=(DIGIT, DIGIT), mode="bilinear", align_corners=False), (margin,) * 4)
    stroke = torch.randint(0, 3, (n,), generator=generator)[:, None, None, None]
    thicker = F.max_pool2d(canvas, 3, 1, 1)
    thinner = 0.5 * (canvas - F.max_pool2d(-canvas, 3, 1, 1))
    canvas = torch.where(stroke == 1, thicker, torch.where(stroke == 2, thinner, canvas))
    angle = _uniform(n, -1.0, 1.0, generator) * math.radians(ROTATION_DEG)
    scale = _uniform(n, *SCALE, generator)
    shear = _uniform(n, -SHEAR, SHEAR, generator)
    shift_x = _uniform(n, -TRANSLATION, TRANSLATION, generator)
    shift_y = _uniform(n, -TRANSLATION, TRANSLATION, generator)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, CANVAS, CANVAS], align_corners=False)
    images = F.grid_sample(canvas, grid, align_corners=False, padding_mode="zeros")
    for side in CLUTTER_SIDES:
        images = torch.maximum(images, _paste(side, digits, n, generator))
    contrast = _uniform(n, *CONTRAST, generator)[:, None, None, None]
    background = _uniform(n, 0.0, BACKGROUND, generator)[:, None, None, None]
    images = background + contrast * images
    images = images + NOISE_SIGMA * torch.randn(images.shape, generator=generator)
    return images.clamp(0.0, 1.0), labels.repeat_interleave(copies, 0)
