"""ShapeCaptions captions in English, German, French and Czech, from one language-free plan.

Each image gets five captions in five styles: the full left-to-right listing, one spatial relation,
the counts, one object (short), and the number of shapes. ``plan_captions`` draws every random
choice once (which template, which relation, which object), so all languages describe the same
facts with the same template of their own; ``render_captions`` writes one language. English is
the benchmark's default and its strings never change when languages are added.

The other languages (Tables 2 and 7 of Geigle et al., the Multi30k analogue) use per-language
templates with grammatical agreement (gender, number) kept to the nominative case: relations are
phrased as "A, to its right B" so no noun phrase needs another case.

Example:
    >>> o = {"kind": "star", "colour": "red", "size": "large", "box": [0, 0, 10, 10]}
    >>> [LEXICONS[lang].np(o) for lang in LANGUAGES]
    ['a large red star', 'ein großer roter Stern', 'une grande étoile rouge', 'velká červená hvězda']
"""
from __future__ import annotations

from itr.data.truth import name_relation

LANGUAGES = ("en", "de", "fr", "cs")
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
RELATIONS = ("left of", "right of", "above", "below")  # "A left of B" = A is left of B


def _cx(o) -> float:
    return (o["box"][0] + o["box"][2]) / 2


def _pick(rng, n: int) -> int:
    return int(rng.integers(n))


def _relation(rng, objects, image_size) -> tuple[int, str, int] | None:
    """(a, relation, b) object indices of one nameable relation, or None."""
    pairs = [(i, j) for i in range(len(objects)) for j in range(len(objects)) if i != j]
    rng.shuffle(pairs)
    for i, j in pairs:
        name = name_relation(objects[i], objects[j], image_size)
        if name is not None:
            return i, name, j
    return None


def plan_captions(rng, objects: list[dict], image_size: int) -> dict:
    """Every random choice of an image's captions, in the order the generator has always drawn them."""
    return {"full": _pick(rng, 2), "relation": _relation(rng, objects, image_size), "count": _pick(rng, 2),
            "object": _pick(rng, len(objects)), "short": _pick(rng, 3), "sizes": _pick(rng, 2)}


def render_captions(plan: dict, objects: list[dict], image_size: int, domain: str, lang: str, n: int) -> list[str]:
    """The first n of the five captions in one language."""
    lex = LEXICONS[lang]
    ordered = sorted(objects, key=_cx)
    listing = lex.join([lex.np(o) for o in ordered])
    if plan["relation"] is None:  # a single object, or objects too close to name a relation
        o = objects[0]
        rel = lex.half(o, "left" if _cx(o) < image_size / 2 else "right")
    else:
        i, name, j = plan["relation"]
        rel = lex.relation(objects[i], name, objects[j])
    groups: dict[tuple, int] = {}
    for o in ordered:
        groups[(o["colour"], o["kind"])] = groups.get((o["colour"], o["kind"]), 0) + 1
    counts = lex.join([lex.group(c, k, m) for (c, k), m in groups.items()])
    k, o = len(objects), objects[plan["object"]]
    captions = [lex.full(plan["full"], listing), rel, lex.count(plan["count"], k, counts),
                lex.short(plan["short"], o, k, domain), lex.sizes(plan["sizes"], k, counts, domain)]
    return captions[:n]


class English:
    PLURALS = {"cross": "crosses"}
    BACKGROUND = {"plain": ("grey noisy background", "noisy background"),  # (long, short)
                  "sketch": ("light striped background", "striped background")}

    def np(self, o, size=True) -> str:
        phrase = " ".join(([o["size"]] if size else []) + [o["colour"], o["kind"]])
        return ("an " if phrase[0] in "aeiou" else "a ") + phrase

    def group(self, colour, kind, m) -> str:
        return f"{NUMBERS[m]} {colour} {self.PLURALS.get(kind, kind + 's')}" if m > 1 else self.np(
            {"colour": colour, "kind": kind}, size=False)

    def join(self, parts, word="and") -> str:
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {word} " + parts[-1]

    def shapes(self, k) -> str:
        return f"{NUMBERS[k]} {'shape' if k == 1 else 'shapes'}"

    def full(self, i, listing):
        return ["from left to right: " + listing, listing + ", from left to right"][i]

    def relation(self, a, name, b):
        return f"{self.np(a)} {name} {self.np(b, size=False)}"

    def half(self, o, side):
        return f"{self.np(o)} in the {side} half of the picture"

    def count(self, i, k, counts):
        return [counts, f"{self.shapes(k)}: {counts}"][i]

    def short(self, i, o, k, domain):
        return [f"a picture with {self.np(o)}", f"{self.np(o, size=False)} on a {self.BACKGROUND[domain][1]}",
                f"an image showing {self.np(o, size=False)} among {self.shapes(k)}"][i]

    def sizes(self, i, k, counts, domain):
        return [f"{self.shapes(k)} on a {self.BACKGROUND[domain][0]}",
                "there " + ("is " if k == 1 else "are ") + counts][i]


class _Other(English):
    """Shared template logic of de, fr, cs: each sets its words and its noun-phrase grammar."""
    AND = FROM_LEFT = FROM_LEFT_AFTER = SIDE = HALF = PICTURE = AMONG = THERE = ""
    NEXT = {}  # relation of B as seen from A ("A left of B" = B to A's right)
    BACKGROUND = {}

    def join(self, parts, word=None) -> str:
        return super().join(parts, word or self.AND)

    def full(self, i, listing):
        return [f"{self.FROM_LEFT} {listing}", f"{listing}, {self.FROM_LEFT_AFTER}"][i]

    def relation(self, a, name, b):
        return f"{self.np(a)}, {self.NEXT[name]} {self.np(b, size=False)}"

    def half(self, o, side):
        return f"{self.np(o)} {self.HALF[side]}"

    def short(self, i, o, k, domain):
        return [f"{self.PICTURE} {self.np(o)}", f"{self.np(o, size=False)} {self.BACKGROUND[domain][1]}",
                f"{self.AMONG.format(shapes=self.shapes(k))} {self.np(o, size=False)}"][i]

    def sizes(self, i, k, counts, domain):
        return [f"{self.shapes(k)} {self.BACKGROUND[domain][0]}", f"{self.THERE} {counts}"][i]


class German(_Other):
    NOUNS = {"circle": ("Kreis", "m", "Kreise"), "square": ("Quadrat", "n", "Quadrate"),
             "triangle": ("Dreieck", "n", "Dreiecke"), "diamond": ("Raute", "f", "Rauten"),
             "star": ("Stern", "m", "Sterne"), "cross": ("Kreuz", "n", "Kreuze")}
    ADJ = {"red": "rot", "green": "grün", "blue": "blau", "yellow": "gelb", "purple": "violett",
           "orange": "orangefarben", "large": "groß", "small": "klein"}
    NUM = {1: "eine", 2: "zwei", 3: "drei", 4: "vier"}
    AND, FROM_LEFT, FROM_LEFT_AFTER = "und", "von links nach rechts:", "von links nach rechts"
    NEXT = {"left of": "rechts davon", "right of": "links davon", "above": "darunter", "below": "darüber"}
    HALF = {"left": "in der linken Bildhälfte", "right": "in der rechten Bildhälfte"}
    PICTURE, AMONG, THERE = "auf dem Bild:", "ein Bild mit {shapes}, darunter", "zu sehen:"
    BACKGROUND = {"plain": ("auf einem grauen, verrauschten Hintergrund", "auf verrauschtem Hintergrund"),
                  "sketch": ("auf einem hellen, gestreiften Hintergrund", "auf gestreiftem Hintergrund")}

    def np(self, o, size=True) -> str:
        noun, gender, _ = self.NOUNS[o["kind"]]
        ending = {"m": "er", "f": "e", "n": "es"}[gender]  # after the indefinite article, nominative
        adjs = ([o["size"]] if size else []) + [o["colour"]]
        return " ".join([{"f": "eine"}.get(gender, "ein")] + [self.ADJ[a] + ending for a in adjs] + [noun])

    def group(self, colour, kind, m) -> str:
        return f"{self.NUM[m]} {self.ADJ[colour]}e {self.NOUNS[kind][2]}" if m > 1 else self.np(
            {"colour": colour, "kind": kind}, size=False)

    def shapes(self, k) -> str:
        return f"{self.NUM[k]} Form" if k == 1 else f"{self.NUM[k]} Formen"


class French(_Other):
    NOUNS = {"circle": ("cercle", "m", "cercles"), "square": ("carré", "m", "carrés"),
             "triangle": ("triangle", "m", "triangles"), "diamond": ("losange", "m", "losanges"),
             "star": ("étoile", "f", "étoiles"), "cross": ("croix", "f", "croix")}
    COLOURS = {"red": ("rouge", "rouge"), "green": ("vert", "verte"), "blue": ("bleu", "bleue"),
               "yellow": ("jaune", "jaune"), "purple": ("violet", "violette"), "orange": ("orange", "orange")}
    SIZES = {"large": ("grand", "grande"), "small": ("petit", "petite")}  # before the noun
    NUM = {1: "une", 2: "deux", 3: "trois", 4: "quatre"}
    AND, FROM_LEFT, FROM_LEFT_AFTER = "et", "de gauche à droite :", "de gauche à droite"
    NEXT = {"left of": "à sa droite", "right of": "à sa gauche", "above": "en dessous", "below": "au-dessus"}
    HALF = {"left": "dans la moitié gauche de l'image", "right": "dans la moitié droite de l'image"}
    PICTURE, AMONG, THERE = "une image avec", "une image de {shapes}, dont", "il y a"
    BACKGROUND = {"plain": ("sur un fond gris bruité", "sur un fond bruité"),
                  "sketch": ("sur un fond clair rayé", "sur un fond rayé")}

    def np(self, o, size=True) -> str:
        noun, gender, _ = self.NOUNS[o["kind"]]
        g = gender == "f"
        words = ["une" if g else "un"] + ([self.SIZES[o["size"]][g]] if size else [])
        return " ".join(words + [noun, self.COLOURS[o["colour"]][g]])

    def group(self, colour, kind, m) -> str:
        if m == 1:
            return self.np({"colour": colour, "kind": kind}, size=False)
        _, gender, plural = self.NOUNS[kind]
        adj = self.COLOURS[colour][gender == "f"]
        return f"{self.NUM[m]} {plural} {adj if adj.endswith('s') or colour == 'orange' else adj + 's'}"

    def shapes(self, k) -> str:
        return f"{self.NUM[k]} forme" if k == 1 else f"{self.NUM[k]} formes"


class Czech(_Other):
    NOUNS = {"circle": ("kruh", "m", "kruhy"), "square": ("čtverec", "m", "čtverce"),
             "triangle": ("trojúhelník", "m", "trojúhelníky"), "diamond": ("kosočtverec", "m", "kosočtverce"),
             "star": ("hvězda", "f", "hvězdy"), "cross": ("kříž", "m", "kříže")}
    ADJ = {"red": "červen", "green": "zelen", "blue": "modr", "yellow": "žlut", "purple": "fialov",
           "orange": "oranžov", "large": "velk", "small": "mal"}  # hard stems: -ý (m), -á (f), -é (plural)
    NUM = {2: ("dva", "dvě"), 3: ("tři", "tři"), 4: ("čtyři", "čtyři")}
    AND, FROM_LEFT, FROM_LEFT_AFTER = "a", "zleva doprava:", "zleva doprava"
    NEXT = {"left of": "vpravo od toho", "right of": "vlevo od toho", "above": "pod tím", "below": "nad tím"}
    HALF = {"left": "v levé polovině obrázku", "right": "v pravé polovině obrázku"}
    PICTURE, AMONG, THERE = "na obrázku je", "obrázek, {shapes}, mezi nimi", "na obrázku:"
    BACKGROUND = {"plain": ("na šedém zašuměném pozadí", "na zašuměném pozadí"),
                  "sketch": ("na světlém pruhovaném pozadí", "na pruhovaném pozadí")}

    def np(self, o, size=True) -> str:
        noun, gender, _ = self.NOUNS[o["kind"]]
        ending = "á" if gender == "f" else "ý"
        return " ".join([self.ADJ[a] + ending for a in ([o["size"]] if size else []) + [o["colour"]]] + [noun])

    def group(self, colour, kind, m) -> str:
        if m == 1:
            return self.np({"colour": colour, "kind": kind}, size=False)
        _, gender, plural = self.NOUNS[kind]
        return f"{self.NUM[m][gender == 'f']} {self.ADJ[colour]}é {plural}"

    def shapes(self, k) -> str:
        return {1: "jeden tvar", 2: "dva tvary", 3: "tři tvary", 4: "čtyři tvary"}[k]


LEXICONS = {"en": English(), "de": German(), "fr": French(), "cs": Czech()}


def vocabulary(kinds, colours, sizes, domains) -> set[str]:
    """Every word any language's captions can contain (the tiny test BERT's word-level vocabulary)."""
    words = set()
    objects = [{"kind": k, "colour": c, "size": s, "box": [0, 0, 1, 1]} for k in kinds for c in colours for s in sizes]
    for lex in LEXICONS.values():
        texts = [lex.np(o) for o in objects] + [lex.group(o["colour"], o["kind"], m) for o in objects for m in (1, 2, 3, 4)]
        o, k = objects[0], 4
        texts += [lex.full(i, "") for i in (0, 1)] + [lex.count(i, k, "") for i in (0, 1)]
        texts += [lex.relation(o, name, o) for name in RELATIONS] + [lex.half(o, side) for side in ("left", "right")]
        texts += [lex.shapes(n) for n in NUMBERS] + [lex.join(["□", "□", "□"])]
        texts += [lex.short(i, o, n, d) for d in domains for n in NUMBERS for i in (0, 1, 2)]
        texts += [lex.sizes(i, n, "", d) for d in domains for n in NUMBERS for i in (0, 1)]
        for text in texts:
            words |= set(text.replace(",", " ").replace(":", " ").split())
    return words - {"□"}
