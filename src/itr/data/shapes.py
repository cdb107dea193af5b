"""ShapeCaptions: a generated image-text benchmark that demands fine-grained matching.

Each image shows 1-4 coloured shapes on a noisy background. Five captions per image
come from varied templates that mention attributes, counts and spatial relations, in
English and optionally German, French and Czech (``languages``; itr.data.captions).
A share of the images (``twin_fraction``) come in *near-twin* pairs inside one split:
the twin differs from its partner only in attribute binding (two colours swapped),
a spatial relation (two objects swap places) or a count (one object more or fewer),
and its captions tell the two apart. A model that matches bags of words will confuse
twins; one that binds attributes to objects will not.

A *visual domain* (``domain``, one of ``DOMAINS``) changes how scenes are drawn and how the
captions name the background: ``plain`` is the default (flat colours on grey noise), ``sketch``
draws pastel shapes with dark outlines on light striped paper. A non-default domain also draws
its own scenes (the domain enters the seed), so two domains never share an image: the second domain is
an "other dataset" for zero-shot transfer and for distractors (itr.layout.datasets names it).

Everything is a pure function of (config, seed): the same config gives byte-identical
images and tables. Each image's scene (objects, attributes, boxes) is stored so that
later stages can derive boxes, extended ground truth or other languages without
re-rendering.

Example:
    >>> from itr.config import ShapesConfig
from itr.data.captions import LANGUAGES, plan_captions, render_captions
    >>> scenes = generate_split(ShapesConfig(n_test=4), "test")
    >>> len(scenes), sorted(scenes[0])
    (4, ['captions', 'image_id', 'meanings', 'objects', 'twin_of', 'twin_type'])
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from itr.atomic import remove_stale_temporaries, replacing
from itr.config import ShapesConfig
from itr.data.captions import LANGUAGES, plan_captions, render_captions
from itr.data.dataset import write_dataset
from itr.data.truth import meanings

KINDS = ("circle", "square", "triangle", "diamond", "star", "cross")
COLOURS = {
    "red": (215, 40, 40), "green": (40, 165, 60), "blue": (45, 85, 225),
    "yellow": (235, 215, 40), "purple": (150, 60, 195), "orange": (245, 140, 25),
}
SIZES = {"small": 0.15, "large": 0.27}  # side of the object's box as a fraction of the image side
SPLITS = ("train", "val", "test")
DOMAINS = ("plain", "sketch")


def split_seed(cfg: ShapesConfig, split: str, *stream: int) -> list[int]:
    """Seed of one split's random stream. The plain domain keeps the seeds it always had."""
    if cfg.domain not in DOMAINS:
        raise ValueError(f"unknown ShapeCaptions domain {cfg.domain!r}; known: {DOMAINS}")
    unknown = set(cfg.languages) - set(LANGUAGES)
    if unknown or not cfg.languages:
        raise ValueError(f"ShapeCaptions languages {list(cfg.languages)}: use some of {LANGUAGES}")
    domain = [] if cfg.domain == "plain" else [1000 + DOMAINS.index(cfg.domain)]
    return [cfg.seed, SPLITS.index(split), *stream, *domain]


def detection_labels() -> list[str]:
    """Detector classes: one per (colour, kind), so region features carry attributes.

    Label 0 is the background, as torchvision's Faster R-CNN expects.
    """
    return ["__background__"] + [f"{c} {k}" for c in COLOURS for k in KINDS]


def label_of(obj: dict) -> int:
    return detection_labels().index(f"{obj['colour']} {obj['kind']}")


# ----------------------------------------------------------------------------- scenes

def _place(rng, objects: list[dict], size_px: float, image_size: int, tries: int = 200):
    """Random top-left corner for a box of side size_px that does not touch existing boxes."""
    for _ in range(tries):
        x1 = rng.uniform(2, image_size - size_px - 2)
        y1 = rng.uniform(2, image_size - size_px - 2)
        box = (x1, y1, x1 + size_px, y1 + size_px)
        if all(_gap(box, o["box"]) >= 3 for o in objects):
            return [round(v, 2) for v in box]
    return None


def _gap(a, b) -> float:
    dx = max(b[0] - a[2], a[0] - b[2])
    dy = max(b[1] - a[3], a[1] - b[3])
    return max(dx, dy)


def _new_object(rng, objects, cfg: ShapesConfig, kind=None, colour=None, size=None):
    kind = kind or KINDS[rng.integers(len(KINDS))]
    colour = colour or list(COLOURS)[rng.integers(len(COLOURS))]
    size = size or list(SIZES)[rng.integers(len(SIZES))]
    side = SIZES[size] * cfg.image_size * rng.uniform(0.92, 1.08)
    box = _place(rng, objects, side, cfg.image_size)
    if box is None:
        return None
    return {"kind": kind, "colour": colour, "size": size, "box": box}


def _random_scene(rng, cfg: ShapesConfig) -> list[dict]:
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects: list[dict] = []
    while len(objects) < n:
        obj = _new_object(rng, objects, cfg)
        if obj is None:  # crowded: restart this scene
            objects = []
            continue
        objects.append(obj)
    return objects


def _twin(rng, objects: list[dict], cfg: ShapesConfig):
    """A near-twin of a scene that differs in exactly one way, or None if none applies."""
    options = []
    coloured = [(i, j) for i in range(len(objects)) for j in range(i + 1, len(objects))
                if objects[i]["colour"] != objects[j]["colour"]]
    if coloured:
        options.append("binding")
    movable = [(i, j) for i in range(len(objects)) for j in range(i + 1, len(objects))
               if (objects[i]["kind"], objects[i]["colour"]) != (objects[j]["kind"], objects[j]["colour"])
               and objects[i]["size"] == objects[j]["size"]
               and abs(_cx(objects[i]) - _cx(objects[j])) > 0.15 * cfg.image_size]
    if movable:
        options.append("relation")
    options.append("count")
    kind = options[rng.integers(len(options))]
    twin = [dict(o) for o in objects]
    if kind == "binding":
        i, j = coloured[rng.integers(len(coloured))]
        twin[i]["colour"], twin[j]["colour"] = objects[j]["colour"], objects[i]["colour"]
    elif kind == "relation":
        i, j = movable[rng.integers(len(movable))]
        twin[i]["box"], twin[j]["box"] = objects[j]["box"], objects[i]["box"]
    else:
        add = len(objects) < cfg.max_objects and (len(objects) == 1 or rng.random() < 0.5)
        if add:
            src = objects[rng.integers(len(objects))]
            new = _new_object(rng, twin, cfg, src["kind"], src["colour"], src["size"])
            if new is None:
                return None
            twin.append(new)
        else:
            twin.pop(int(rng.integers(len(twin))))
    return kind, twin


def _cx(o) -> float:
    return (o["box"][0] + o["box"][2]) / 2


# --------------------------------------------------------------------------- captions

def captions_for(rng, objects: list[dict], cfg: ShapesConfig) -> tuple[dict[str, list[str]], list[list]]:
    """(language -> captions, meanings) of one scene: one plan of random choices, rendered in each of
    cfg.languages; the j-th caption of every language has the j-th meaning (itr.data.truth)."""
    plan = plan_captions(rng, objects, cfg.image_size)
    texts = {lang: render_captions(plan, objects, cfg.image_size, cfg.domain, lang, cfg.captions_per_image)
             for lang in cfg.languages}
    return texts, meanings(plan, objects, cfg.image_size, cfg.domain)[:cfg.captions_per_image]


# ---------------------------------------------------------------------------- render

def _polygon(kind: str, box) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = box
    cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
    if kind == "square":
        return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    if kind == "triangle":
        return [(cx, y1), (x2, y2), (x1, y2)]
    if kind == "diamond":
        return [(cx, y1), (x2, cy), (cx, y2), (x1, cy)]
    if kind == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + i * math.pi / 5
            pts.append((cx + rad * math.cos(ang), cy + r * 0.05 + rad * math.sin(ang)))
        return pts
    if kind == "cross":
        t = r * 0.36
        return [(cx - t, y1), (cx + t, y1), (cx + t, cy - t), (x2, cy - t), (x2, cy + t), (cx + t, cy + t),
                (cx + t, y2), (cx - t, y2), (cx - t, cy + t), (x1, cy + t), (x1, cy - t), (cx - t, cy - t)]
    raise ValueError(f"unknown shape kind {kind!r}; known: {KINDS}")


def render(objects: list[dict], cfg: ShapesConfig, rng) -> Image.Image:
    """Draw a scene in the config's domain.

    plain:  a random grey-ish tone plus Gaussian noise, then flat-coloured shapes.
    sketch: light paper with faint diagonal stripes and half the noise, then pastel shapes
            (colour mixed 40% toward white) with a dark 2-pixel outline.
    """
    s = cfg.image_size
    sketch = cfg.domain == "sketch"
    tone = (rng.uniform(200, 235) if sketch else rng.uniform(90, 170)) + rng.uniform(-12, 12, size=3)
    pixels = tone[None, None, :] + rng.normal(0, (0.5 if sketch else 1.0) * cfg.noise * 255, size=(s, s, 3))
    if sketch:
        yy, xx = np.mgrid[:s, :s]
        pixels -= 25.0 * (((xx + yy) // 6) % 2 == 0)[..., None]  # (s, s, 1) diagonal stripes
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for o in objects:
        colour = np.array([int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLOURS[o["colour"]]])
        fill = tuple(int(v) for v in (0.6 * colour + 0.4 * 255 if sketch else colour))
        outline = dict(outline=(30, 30, 30), width=2) if sketch else {}
        if o["kind"] == "circle":
            draw.ellipse(o["box"], fill=fill, **outline)
        else:
            draw.polygon(_polygon(o["kind"], o["box"]), fill=fill, **outline)
    return img


# ----------------------------------------------------------------------------- build

def generate_split(cfg: ShapesConfig, split: str) -> list[dict]:
    """Scenes and captions of one split (no pixels): a list of dicts, twins adjacent."""
    n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
    rng = np.random.default_rng(split_seed(cfg, split))
    n_pairs = int(round(cfg.twin_fraction * n / 2))
    scenes: list[dict] = []
    while len(scenes) < n:
        idx = len(scenes)
        base = _random_scene(rng, cfg)
        scenes.append({"image_id": f"{split}-{idx:06d}", "objects": base, "twin_of": None, "twin_type": None})
        if len(scenes) < n and idx // 2 < n_pairs and idx % 2 == 0:
            made = _twin(rng, base, cfg)
            while made is None:
                made = _twin(rng, base, cfg)
            kind, twin = made
            scenes.append({"image_id": f"{split}-{idx + 1:06d}", "objects": twin,
                           "twin_of": f"{split}-{idx:06d}", "twin_type": kind})
    for sc in scenes:
        sc["captions"], sc["meanings"] = captions_for(rng, sc["objects"], cfg)
    return scenes


def build(cfg: ShapesConfig, out_dir: str | Path) -> dict:
    """Generate all splits: PNGs under out_dir/images/, the canonical parquet tables, and last the
    manifest (``manifest.json``: counts, share of twins, config), which marks the dataset complete.

    Returns the manifest's content.
    """
    out_dir = Path(out_dir)
    from tqdm import tqdm

    remove_stale_temporaries(out_dir)  # a killed run's half-written files

    image_rows, caption_rows = [], []
    for split in SPLITS:
        scenes = generate_split(cfg, split)
        pixel_rng = np.random.default_rng(split_seed(cfg, split, 7))
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        for sc in tqdm(scenes, desc=f"render {split}", mininterval=5):
            rel = f"images/{split}/{sc['image_id']}.png"
            img = render(sc["objects"], cfg, pixel_rng)
            with replacing(out_dir / rel) as tmp:
                img.save(tmp, format="PNG")
            image_rows.append({
                "image_id": sc["image_id"], "split": split, "file": rel,
                "width": cfg.image_size, "height": cfg.image_size,
                "scene": json.dumps({"objects": sc["objects"]}),
                "twin_of": sc["twin_of"], "twin_type": sc["twin_type"],
            })
            for lang, texts in sc["captions"].items():
                for j, text in enumerate(texts):  # English ids as they always were; others name their language
                    caption_id = f"{sc['image_id']}-{j}" if lang == "en" else f"{sc['image_id']}-{lang}{j}"
                    caption_rows.append({"image_id": sc["image_id"], "caption_id": caption_id, "split": split,
                                         "lang": lang, "text": text, "meaning": json.dumps(sc["meanings"][j])})
    twins = sum(r["twin_of"] is not None for r in image_rows)
    summary = {"dataset": "shapes", "images": len(image_rows), "captions": len(caption_rows),
               "twin_images": 2 * twins, "twin_share": round(2 * twins / len(image_rows), 4),
               "config": cfg.to_dict()}
    return write_dataset(out_dir, image_rows, caption_rows, summary)
