"""Which ShapeCaptions captions are true of which scenes: the extended ground truth (the ECCV Caption analogue).

A caption is generated from a plan, so its *meaning* is known exactly: a conjunction of language-free atoms
(``meanings``), stored with the caption (``captions.parquet``, column ``meaning``). A scene has a set of *facts*
(``facts``), atoms of the same vocabulary, and a caption holds of a scene when every atom of its meaning is one
of the scene's facts (``holds``). "a red circle above a blue square" is then true of every image with some red
circle above some blue square, not only of the image it was written for.

The atoms, one per thing a template says (sizes, colours and kinds are the generator's words):

* ``["sequence", [size, colour, kind], ...]``: exactly these objects, left to right (the full listing);
* ``["groups", [colour, kind, m], ...]``: exactly this multiset of coloured kinds (the counts; sorted);
* ``["k", n]``: n shapes; ``["domain", d]``: the background the caption names;
* ``["has", size or None, colour, kind]``: some object of this kind and colour (and size, when named);
* ``["relation", [size, colour, kind], name, [colour, kind]]``: some such object *name* ("left of", "above",
  ...) some other such object: their centres more than 0.12 of the image apart on that axis (``relations``; the
  generator names the dominant axis of a pair, ``name_relation``, but the other may hold too);
* ``["half", [size, colour, kind], side]``: some such object in the left or right half.

Example:
    >>> red, blue = ({"kind": "circle", "colour": "red", "size": "small", "box": [10, 10, 30, 30]},
    ...              {"kind": "square", "colour": "blue", "size": "large", "box": [10, 80, 50, 120]})
    >>> m = [["relation", ["small", "red", "circle"], "above", ["blue", "square"]]]
    >>> holds(m, [red, blue], 128, "plain"), holds(m, [dict(red, colour="blue"), dict(blue, colour="red")], 128, "plain")
    (True, False)
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np


def _cx(o) -> float:
    return (o["box"][0] + o["box"][2]) / 2


def _cy(o) -> float:
    return (o["box"][1] + o["box"][3]) / 2


def name_relation(a: dict, b: dict, image_size: int) -> str | None:
    """How the generator names "a <relation> b": horizontal when the centres are far enough apart and the
    horizontal offset dominates, else vertical when far enough apart, else nothing. Always one of ``relations``."""
    dx, dy = _cx(b) - _cx(a), _cy(b) - _cy(a)
    if abs(dx) > 0.12 * image_size and abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    if abs(dy) > 0.12 * image_size:
        return "above" if dy > 0 else "below"
    return None


def relations(a: dict, b: dict, image_size: int) -> set[str]:
    """Every relation true of "a <relation> b": each axis on which the centres are far enough apart (the generator
    names only the dominant one, ``name_relation``; "above" is no less true of a pair that is also far apart
    horizontally)."""
    dx, dy = _cx(b) - _cx(a), _cy(b) - _cy(a)
    out = set()
    if abs(dx) > 0.12 * image_size:
        out.add("left of" if dx > 0 else "right of")
    if abs(dy) > 0.12 * image_size:
        out.add("above" if dy > 0 else "below")
    return out


def _full(o) -> list:
    return [o["size"], o["colour"], o["kind"]]


def _side(o, image_size: int) -> str:
    return "left" if _cx(o) < image_size / 2 else "right"


def _groups(objects) -> list:
    return ["groups"] + sorted([c, k, m] for (c, k), m in Counter((o["colour"], o["kind"]) for o in objects).items())


def meanings(plan: dict, objects: list[dict], image_size: int, domain: str) -> list[list]:
    """The meanings of the five captions ``render_captions`` writes from ``plan`` (any language: they say the same)."""
    k, o = len(objects), objects[plan["object"]]
    full = [["sequence"] + [_full(x) for x in sorted(objects, key=_cx)]]
    if plan["relation"] is None:  # the "half" caption names the first object (render_captions)
        relation = [["half", _full(objects[0]), _side(objects[0], image_size)]]
    else:
        i, name, j = plan["relation"]
        relation = [["relation", _full(objects[i]), name, [objects[j]["colour"], objects[j]["kind"]]]]
    count = [_groups(objects)] + ([["k", k]] if plan["count"] == 1 else [])
    short = [[["has"] + _full(o)],
             [["has", None, o["colour"], o["kind"]], ["domain", domain]],
             [["has", None, o["colour"], o["kind"]], ["k", k]]][plan["short"]]
    sizes = [[["k", k], ["domain", domain]], [_groups(objects)]][plan["sizes"]]
    return [full, relation, count, short, sizes]


def facts(objects: list[dict], image_size: int, domain: str) -> set[str]:
    """Every atom true of a scene, as canonical JSON strings."""
    out = [["sequence"] + [_full(x) for x in sorted(objects, key=_cx)], _groups(objects), ["k", len(objects)],
           ["domain", domain]]
    for a in objects:
        out += [["has"] + _full(a), ["has", None, a["colour"], a["kind"]], ["half", _full(a), _side(a, image_size)]]
        for b in objects:
            for name in sorted(relations(a, b, image_size)) if b is not a else ():
                out.append(["relation", _full(a), name, [b["colour"], b["kind"]]])
    return {json.dumps(atom) for atom in out}


def holds(meaning: list, objects: list[dict], image_size: int, domain: str) -> bool:
    """Whether a caption of this meaning is true of the scene."""
    return {json.dumps(atom) for atom in meaning} <= facts(objects, image_size, domain)


def extended_positives(meaning_column, scenes, image_size: int, domain: str) -> np.ndarray:
    """(captions, images) bool: caption q is true of image n. ``meaning_column``: each caption's meaning as JSON
    (``captions.parquet``); ``scenes``: each image's object list. An inverted index from fact to images makes
    this one set intersection per distinct meaning, not one check per pair."""
    images_with: dict[str, set[int]] = {}
    for n, objects in enumerate(scenes):
        for fact in facts(objects, image_size, domain):
            images_with.setdefault(fact, set()).add(n)
    out = np.zeros((len(meaning_column), len(scenes)), dtype=bool)
    cache: dict[str, list[int]] = {}
    for q, text in enumerate(meaning_column):
        if text not in cache:
            atoms = [json.dumps(atom) for atom in json.loads(text)]
            found = set.intersection(*(images_with.get(a, set()) for a in atoms))
            cache[text] = sorted(found)
        out[q, cache[text]] = True
    return out


def scene_class(objects: list[dict]) -> str:
    """An image's class for uni-modal retrieval: the multiset of its (colour, kind) objects (sizes and places aside)."""
    return json.dumps(_groups(objects))


def graded_caption_pairs(positives: np.ndarray, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Caption pairs graded by how alike their meanings are (the STS analogue): the Jaccard overlap of the sets of
    images each caption is true of. Half the pairs share an image at least (a second caption true of a random image
    the first is true of), half are two random captions, so the grades spread over [0, 1] as STS scores do.

    Args:
        positives: (captions, images) bool, ``extended_positives``.
    Returns:
        pairs (P, 2) caption rows, grades (P,) in [0, 1].
    """
    rng = np.random.default_rng(seed)
    n = len(positives)
    if n < 2 or not positives.any(axis=1).all():
        raise ValueError(f"graded pairs need at least two captions, each true of some image; got {n} captions, "
                         f"{int((~positives.any(axis=1)).sum())} true of none")
    true_of = [np.flatnonzero(row) for row in positives]
    holders = [np.flatnonzero(col) for col in positives.T]  # captions true of each image
    pairs = []
    while len(pairs) < n_pairs:
        a = int(rng.integers(n))
        b = int(rng.choice(holders[int(rng.choice(true_of[a]))])) if len(pairs) % 2 == 0 else int(rng.integers(n))
        if a != b:
            pairs.append((a, b))
    pairs = np.array(pairs)
    both = (positives[pairs[:, 0]] & positives[pairs[:, 1]]).sum(axis=1)
    either = (positives[pairs[:, 0]] | positives[pairs[:, 1]]).sum(axis=1)
    return pairs, both / either
