"""Scenes of the synthetic web and how to draw them.

A scene is a small group of identical objects (shape, colour, count, size,
position) on a background. Captions describe exactly these attributes, so a
model trained on the synthetic web can learn which caption fits which image.
Drawing is deterministic and fast: a background built with numpy
broadcasting, shapes drawn with ``ImageDraw``, then a slice of a precomputed
texture added so that JPEGs have a realistic size.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 35),
    "green": (40, 160, 60),
    "blue": (35, 70, 200),
    "yellow": (245, 215, 40),
    "orange": (245, 135, 25),
    "purple": (125, 50, 165),
    "pink": (245, 140, 185),
    "brown": (120, 75, 35),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
}
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")
BACKGROUND_STYLES: tuple[str, ...] = ("solid", "gradient")

# Region of the image (x0, y0, x1, y1 as fractions) that each position fills.
_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left": (0.03, 0.08, 0.45, 0.92),
    "right": (0.55, 0.08, 0.97, 0.92),
    "top": (0.08, 0.03, 0.92, 0.45),
    "bottom": (0.08, 0.55, 0.92, 0.97),
    "centre": (0.22, 0.22, 0.78, 0.78),
}
# Object diameter as a fraction of the image's shorter side.
_SIZE_FRACTION = {"small": 0.12, "large": 0.3}
_TEXTURE_SIDE = 2048
_GRAIN_ZERO = 64  # grain value that leaves a pixel unchanged


@dataclass(frozen=True)
class Scene:
    """What an image shows; everything a caption may mention."""

    shape: str
    colour: str
    count: int
    size: str
    position: str
    background: str
    background_style: str
    layout_seed: int


def random_scene(rng: random.Random) -> Scene:
    """Draw a scene whose object colour differs from its background colour."""
    colour = rng.choice(tuple(COLOURS))
    background = rng.choice([c for c in COLOURS if c != colour])
    return Scene(
        shape=rng.choice(SHAPES),
        colour=colour,
        count=rng.choices((1, 2, 3, 4), weights=(4, 3, 2, 1))[0],
        size=rng.choice(SIZES),
        position=rng.choice(POSITIONS),
        background=background,
        background_style=rng.choice(BACKGROUND_STYLES),
        layout_seed=rng.getrandbits(32),
    )


def different_scene(scene: Scene, rng: random.Random) -> Scene:
    """A scene with another shape and another colour, for mismatched captions."""
    shape = rng.choice([s for s in SHAPES if s != scene.shape])
    colour = rng.choice([c for c in COLOURS if c not in (scene.colour, scene.background)])
    other = random_scene(rng)
    return Scene(
        shape=shape,
        colour=colour,
        count=other.count,
        size=other.size,
        position=other.position,
        background=rng.choice([c for c in COLOURS if c != colour]),
        background_style=other.background_style,
        layout_seed=other.layout_seed,
    )


# A background colour that is no colour class: the labelled set can show objects on it,
# so that the only class colour in the picture is the object's.
NEUTRAL_BACKGROUND = "grey"
_PALETTE = {**COLOURS, NEUTRAL_BACKGROUND: (128, 128, 128)}


def render(scene: Scene, width: int, height: int, texture: int) -> Image.Image:
    """Draw the scene as an RGB image; texture 0 is flat, 1 and 2 add grain."""
    rng = random.Random(scene.layout_seed)
    image = Image.fromarray(_background(scene, width, height, rng), "RGB")
    draw = ImageDraw.Draw(image)
    fill = _jitter(COLOURS[scene.colour], rng, 12)
    for centre_x, centre_y, radius in _layout(scene, width, height, rng):
        _draw_shape(draw, scene.shape, centre_x, centre_y, radius, fill)
    if texture:
        image = _add_texture(image, texture, rng)
    return image


def _jitter(rgb: tuple[int, int, int], rng: random.Random, spread: int) -> tuple[int, int, int]:
    """Vary a palette colour slightly so that images are not all alike."""
    r, g, b = (min(255, max(0, c + rng.randint(-spread, spread))) for c in rgb)
    return (r, g, b)


def _background(scene: Scene, width: int, height: int, rng: random.Random) -> np.ndarray:
    """A solid or linear-gradient background as an (H, W, 3) uint8 array."""
    base = np.array(_jitter(_PALETTE[scene.background], rng, 10), dtype=np.float32)
    if scene.background_style == "solid":
        return np.broadcast_to(base.astype(np.uint8), (height, width, 3)).copy()
    shade = 0.55 if base.mean() > 128 else 1.6
    other = np.clip(base * shade + (0 if shade < 1 else 40), 0, 255)
    angle = rng.uniform(0, 2 * math.pi)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32) * math.cos(angle)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32) * math.sin(angle)
    ramp = ys[:, None] + xs[None, :]
    low, high = float(ramp.min()), float(ramp.max())
    levels = ((ramp - low) * (255.0 / max(high - low, 1e-6))).astype(np.uint8)
    steps = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]
    palette = (base + steps * (other - base)).astype(np.uint8)
    return palette[levels]


def _layout(
    scene: Scene, width: int, height: int, rng: random.Random
) -> list[tuple[float, float, float]]:
    """Centres and radii of the objects, in a row or column of the scene's region."""
    fx0, fy0, fx1, fy1 = _REGIONS[scene.position]
    x0, y0, x1, y1 = fx0 * width, fy0 * height, fx1 * width, fy1 * height
    horizontal = (x1 - x0) >= (y1 - y0)
    long_side = (x1 - x0) if horizontal else (y1 - y0)
    short_side = (y1 - y0) if horizontal else (x1 - x0)
    cell = long_side / scene.count
    diameter = min(_SIZE_FRACTION[scene.size] * min(width, height), cell * 0.9, short_side * 0.9)
    radius = max(diameter / 2, 1.0)
    objects = []
    for i in range(scene.count):
        along = (i + 0.5) * cell + rng.uniform(-0.1, 0.1) * (cell - diameter)
        across = short_side / 2 + rng.uniform(-0.25, 0.25) * (short_side - diameter)
        if horizontal:
            objects.append((x0 + along, y0 + across, radius))
        else:
            objects.append((x0 + across, y0 + along, radius))
    return objects


def _draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    x: float,
    y: float,
    r: float,
    fill: tuple[int, int, int],
) -> None:
    """Draw one object centred at (x, y) with outer radius r."""
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        side = r * 0.85
        draw.rectangle((x - side, y - side, x + side, y + side), fill=fill)
    elif shape == "triangle":
        draw.regular_polygon((x, y + r * 0.15, r), 3, fill=fill)
    elif shape == "hexagon":
        draw.regular_polygon((x, y, r), 6, fill=fill)
    elif shape == "star":
        draw.polygon(_star_points(x, y, r), fill=fill)
    elif shape == "cross":
        arm = r * 0.33
        draw.rectangle((x - r, y - arm, x + r, y + arm), fill=fill)
        draw.rectangle((x - arm, y - r, x + arm, y + r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _star_points(x: float, y: float, r: float) -> list[tuple[float, float]]:
    """Vertices of a five-pointed star, point up."""
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.42
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
    return points


@functools.cache
def _texture(level: int) -> Image.Image:
    """A fixed grain field (fine noise plus soft blotches) around 128, shared by all images."""
    rng = np.random.default_rng(20240601 + level)
    fine = rng.normal(0.0, 2.5 * level, (_TEXTURE_SIDE, _TEXTURE_SIDE)).astype(np.float32)
    coarse = rng.normal(0.0, 40.0, (64, 64)).astype(np.float32)
    blotches = Image.fromarray(coarse, "F").resize(
        (_TEXTURE_SIDE, _TEXTURE_SIDE), Image.Resampling.BICUBIC
    )
    field = fine + np.asarray(blotches) * np.float32(0.12 * level)
    return Image.fromarray((np.clip(field, -60, 60) + (_GRAIN_ZERO + 0.5)).astype(np.uint8), "L")


def _add_texture(image: Image.Image, level: int, rng: random.Random) -> Image.Image:
    """Add a slice of the grain field (in C, one image-sized buffer) so JPEGs look like photos."""
    width, height = image.size
    field = _texture(level)
    grain = Image.new("L", (width, height))
    for top in range(0, height, _TEXTURE_SIDE):
        for left in range(0, width, _TEXTURE_SIDE):
            tile_w = min(_TEXTURE_SIDE, width - left)
            tile_h = min(_TEXTURE_SIDE, height - top)
            ox = rng.randrange(_TEXTURE_SIDE - tile_w + 1)
            oy = rng.randrange(_TEXTURE_SIDE - tile_h + 1)
            grain.paste(field.crop((ox, oy, ox + tile_w, oy + tile_h)), (left, top))
    grain_rgb = Image.merge("RGB", (grain, grain, grain))
    return ImageChops.add(image, grain_rgb, scale=1.0, offset=-_GRAIN_ZERO)
