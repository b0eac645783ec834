"""Captions of the synthetic web: scene descriptions in four languages, and noise.

Each language builds its noun phrase with real agreement (gender, number,
case), so that a language identifier recognises non-English captions and a
text encoder sees the same attributes in every language.
"""

from __future__ import annotations

import random
import re

from .scenes import Scene

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es")

_EN_SHAPES = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "hexagon": "hexagons",
    "cross": "crosses",
}
_EN_COUNTS = {2: "two", 3: "three", 4: "four"}
_EN_POSITIONS = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
_EN_TEMPLATES = (
    "{np} on {a_bg} background",
    "{np} {pos}",
    "photo of {np}",
    "{np} {pos} on {a_bg} background",
    "{np} against a plain {bg} backdrop",
    "simple illustration of {np} {pos}",
    "{np}, {bg} background",
    "a picture showing {np} {pos}",
)

# German: (noun, plural, gender); colour stems take strong/mixed endings.
_DE_SHAPES = {
    "circle": ("Kreis", "Kreise", "m"),
    "square": ("Quadrat", "Quadrate", "n"),
    "triangle": ("Dreieck", "Dreiecke", "n"),
    "star": ("Stern", "Sterne", "m"),
    "hexagon": ("Sechseck", "Sechsecke", "n"),
    "cross": ("Kreuz", "Kreuze", "n"),
}
_DE_COLOURS = {
    "red": "rot",
    "green": "grün",
    "blue": "blau",
    "yellow": "gelb",
    "orange": "orangefarben",
    "purple": "violett",
    "pink": "rosafarben",
    "brown": "braun",
    "black": "schwarz",
    "white": "weiß",
}
_DE_SIZES = {"small": "klein", "large": "groß"}
_DE_COUNTS = {2: "zwei", 3: "drei", 4: "vier"}
_DE_POSITIONS = {
    "left": "links im Bild",
    "right": "rechts im Bild",
    "top": "oben im Bild",
    "bottom": "unten im Bild",
    "centre": "in der Mitte des Bildes",
}
_DE_TEMPLATES = (
    "{nom} auf {bg} Hintergrund",
    "Das Bild zeigt {acc} auf {bg} Hintergrund.",
    "{nom} {pos}, vor {bg} Hintergrund",
    "Foto: {nom} {pos}",
    "Hier sieht man {acc} {pos}.",
)

# French: (noun, plural, gender); colours as (m, f, m pl, f pl).
_FR_SHAPES = {
    "circle": ("cercle", "cercles", "m"),
    "square": ("carré", "carrés", "m"),
    "triangle": ("triangle", "triangles", "m"),
    "star": ("étoile", "étoiles", "f"),
    "hexagon": ("hexagone", "hexagones", "m"),
    "cross": ("croix", "croix", "f"),
}
_FR_COLOURS = {
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "green": ("vert", "verte", "verts", "vertes"),
    "blue": ("bleu", "bleue", "bleus", "bleues"),
    "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
    "orange": ("orange", "orange", "orange", "orange"),
    "purple": ("violet", "violette", "violets", "violettes"),
    "pink": ("rose", "rose", "roses", "roses"),
    "brown": ("marron", "marron", "marron", "marron"),
    "black": ("noir", "noire", "noirs", "noires"),
    "white": ("blanc", "blanche", "blancs", "blanches"),
}
_FR_SIZES = {
    "small": ("petit", "petite", "petits", "petites"),
    "large": ("grand", "grande", "grands", "grandes"),
}
_FR_COUNTS = {2: "deux", 3: "trois", 4: "quatre"}
_FR_POSITIONS = {
    "left": "à gauche",
    "right": "à droite",
    "top": "en haut de l'image",
    "bottom": "en bas de l'image",
    "centre": "au centre de l'image",
}
_FR_TEMPLATES = (
    "{np} sur fond {bg}",
    "Une photo {de_np} {pos}",
    "Il y a {np} {pos} sur un fond {bg}.",
    "Image : {np} {pos}",
    "Dessin simple {de_np} sur fond {bg}",
)

# Spanish: (noun, plural, gender); colours as (m, f, m pl, f pl).
_ES_SHAPES = {
    "circle": ("círculo", "círculos", "m"),
    "square": ("cuadrado", "cuadrados", "m"),
    "triangle": ("triángulo", "triángulos", "m"),
    "star": ("estrella", "estrellas", "f"),
    "hexagon": ("hexágono", "hexágonos", "m"),
    "cross": ("cruz", "cruces", "f"),
}
_ES_COLOURS = {
    "red": ("rojo", "roja", "rojos", "rojas"),
    "green": ("verde", "verde", "verdes", "verdes"),
    "blue": ("azul", "azul", "azules", "azules"),
    "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
    "orange": ("naranja", "naranja", "naranjas", "naranjas"),
    "purple": ("morado", "morada", "morados", "moradas"),
    "pink": ("rosa", "rosa", "rosas", "rosas"),
    "brown": ("marrón", "marrón", "marrones", "marrones"),
    "black": ("negro", "negra", "negros", "negras"),
    "white": ("blanco", "blanca", "blancos", "blancas"),
}
_ES_SIZES = {
    "small": ("pequeño", "pequeña", "pequeños", "pequeñas"),
    "large": ("grande", "grande", "grandes", "grandes"),
}
_ES_COUNTS = {2: "dos", 3: "tres", 4: "cuatro"}
_ES_POSITIONS = {
    "left": "a la izquierda",
    "right": "a la derecha",
    "top": "en la parte superior",
    "bottom": "en la parte inferior",
    "centre": "en el centro de la imagen",
}
_ES_TEMPLATES = (
    "{np} sobre fondo {bg}",
    "Foto de {np} {pos}",
    "Hay {np} {pos} sobre un fondo {bg}.",
    "Imagen de {np} con fondo {bg}",
    "Dibujo sencillo de {np} {pos}",
)

# Alt-text often carries words beyond the picture (style, author, year); they also keep
# unrelated clean rows from sharing one caption, which caption dedup would merge.
_STYLES = {
    "en": (
        "vector illustration",
        "flat design",
        "stock image",
        "clip art",
        "digital art",
        "geometric pattern",
        "wallpaper",
        "icon",
        "greeting card",
        "art print",
        "minimalist poster",
        "sticker",
        "website banner",
        "children's book illustration",
    ),
    "de": (
        "Vektorillustration",
        "flaches Design",
        "Stockfoto",
        "Clipart",
        "digitale Kunst",
        "geometrisches Muster",
        "Hintergrundbild",
        "Grußkarte",
        "Kunstdruck",
        "Kinderbuchillustration",
        "minimalistisches Poster",
    ),
    "fr": (
        "illustration vectorielle",
        "design plat",
        "photo de stock",
        "art numérique",
        "motif géométrique",
        "fond d'écran",
        "carte de vœux",
        "affiche minimaliste",
        "impression d'art",
        "illustration pour enfants",
    ),
    "es": (
        "ilustración vectorial",
        "diseño plano",
        "foto de archivo",
        "arte digital",
        "patrón geométrico",
        "fondo de pantalla",
        "tarjeta de felicitación",
        "póster minimalista",
        "lámina artística",
        "ilustración infantil",
    ),
}
_BY = {"en": "by", "de": "von", "fr": "par", "es": "por"}
_FIRST_NAMES = (
    "Anna",
    "Marco",
    "Julia",
    "Tom",
    "Sara",
    "Paul",
    "Lena",
    "Hugo",
    "Nina",
    "Jonas",
    "Clara",
    "Leo",
    "Marta",
    "Felix",
    "Ines",
    "Oscar",
)
_LAST_NAMES = (
    "Berg",
    "Moreau",
    "Rossi",
    "Klein",
    "Garcia",
    "Novak",
    "Lindqvist",
    "Dubois",
    "Keller",
    "Santos",
    "Weber",
    "Laurent",
    "Romero",
    "Fischer",
    "Costa",
    "Martin",
)

_JUNK = (
    "IMG_{n:04d}.jpg",
    "DSC_{n:04d}",
    "DSC0{n:04d}.JPG",
    "image",
    "photo",
    "untitled",
    "click here",
    "http://www.example.com/images/{n}.jpg",
    "image{n:03d}.png",
    "thumbnail",
    "Untitled-{n}",
    "P{n:07d}.JPG",
)
_SUFFIXES = (" - stock photo", " | free download", " (HD)", " - royalty free image", " #art")
_ADDED_WORDS = ("nice", "simple", "cute", "bright", "new")


def describe(scene: Scene, language: str, rng: random.Random) -> str:
    """A caption that matches the scene, in one of LANGUAGES."""
    builders = {"en": _english, "de": _german, "fr": _french, "es": _spanish}
    if language not in builders:
        raise ValueError(f"unknown caption language {language!r}; expected one of {LANGUAGES}")
    caption = builders[language](scene, rng) + _tail(language, rng)
    return caption[0].upper() + caption[1:] if rng.random() < 0.5 else caption


def _tail(language: str, rng: random.Random) -> str:
    """Optional extra words after the description: style, author, year."""
    tail = ""
    if rng.random() < 0.5:
        tail += " - " + rng.choice(_STYLES[language])
    if rng.random() < 0.4:
        tail += f" {_BY[language]} {rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    if rng.random() < 0.3:
        tail += f" ({rng.randint(1998, 2024)})"
    return tail


def junk_caption(rng: random.Random) -> str:
    """A caption that says nothing about the image, as scraped alt-text often does."""
    return rng.choice(_JUNK).format(n=rng.randrange(1, 10000))


# A re-post's caption keeps at least this share of the original's 5-gram shingles.
MIN_EDIT_OVERLAP = 0.85


def edit_caption(caption: str, rng: random.Random) -> str:
    """A light edit of a caption, as a re-post of the same image would carry.

    On a short caption, a dropped word or an appended " - royalty free image"
    changes most of the text; such an edit is not a near-duplicate any more, so
    edits are drawn until one keeps ``MIN_EDIT_OVERLAP`` of the shingles, and
    the case change (which always does) is the fallback.
    """
    edits = (_change_case, _toggle_period, _add_word, _drop_word, _add_suffix)
    for _ in range(4):
        edited = rng.choice(edits)(caption, rng)
        if edited != caption and _overlap(edited, caption) >= MIN_EDIT_OVERLAP:
            return edited
    return caption.swapcase()


def _overlap(first: str, second: str) -> float:
    """Jaccard similarity of the character 5-grams of two captions, punctuation folded."""

    def grams(text: str) -> set[str]:
        folded = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
        return {folded[i : i + 5] for i in range(max(1, len(folded) - 4))}

    a, b = grams(first), grams(second)
    return len(a & b) / len(a | b)


def _english(scene: Scene, rng: random.Random) -> str:
    size = f"{scene.size} " if rng.random() < 0.5 else ""
    words = f"{size}{scene.colour} "
    if scene.count == 1:
        noun = words + scene.shape
        np_ = ("an " if noun[0] in "aeiou" else "a ") + noun
    else:
        np_ = f"{_EN_COUNTS[scene.count]} {words}{_EN_SHAPES[scene.shape]}"
    template = rng.choice(_EN_TEMPLATES)
    a_bg = ("an " if scene.background[0] in "aeiou" else "a ") + scene.background
    return template.format(
        np=np_, bg=scene.background, a_bg=a_bg, pos=_EN_POSITIONS[scene.position]
    )


def _german(scene: Scene, rng: random.Random) -> str:
    noun, plural, gender = _DE_SHAPES[scene.shape]
    stems = [_DE_COLOURS[scene.colour]]
    if rng.random() < 0.5:
        stems.insert(0, _DE_SIZES[scene.size])
    if scene.count == 1:
        ending = "er" if gender == "m" else "es"
        nom = "ein " + " ".join(s + ending for s in stems) + " " + noun
        acc = nom if gender == "n" else "einen " + " ".join(s + "en" for s in stems) + " " + noun
    else:
        nom = _DE_COUNTS[scene.count] + " " + " ".join(s + "e" for s in stems) + " " + plural
        acc = nom
    bg = _DE_COLOURS[scene.background] + "em"
    template = rng.choice(_DE_TEMPLATES)
    return template.format(nom=nom, acc=acc, bg=bg, pos=_DE_POSITIONS[scene.position])


def _romance_np(
    scene: Scene,
    rng: random.Random,
    shapes: dict[str, tuple[str, str, str]],
    colours: dict[str, tuple[str, str, str, str]],
    sizes: dict[str, tuple[str, str, str, str]],
    counts: dict[int, str],
    size_first: bool,
) -> str:
    """Noun phrase for French (size before the noun) and Spanish (after)."""
    noun, plural, gender = shapes[scene.shape]
    form = (0 if gender == "m" else 1) + (0 if scene.count == 1 else 2)
    article = ("un" if gender == "m" else "une") if scene.count == 1 else counts[scene.count]
    if scene.count == 1 and not size_first:
        article = "un" if gender == "m" else "una"
    word = noun if scene.count == 1 else plural
    colour = colours[scene.colour][form]
    if rng.random() < 0.5:
        return f"{article} {word} {colour}"
    size = sizes[scene.size][form]
    if size_first:
        return f"{article} {size} {word} {colour}"
    return f"{article} {word} {colour} {size}"


def _french(scene: Scene, rng: random.Random) -> str:
    np_ = _romance_np(scene, rng, _FR_SHAPES, _FR_COLOURS, _FR_SIZES, _FR_COUNTS, True)
    de_np = "d'" + np_ if np_.startswith("un") else "de " + np_
    template = rng.choice(_FR_TEMPLATES)
    bg = _FR_COLOURS[scene.background][0]
    return template.format(np=np_, de_np=de_np, bg=bg, pos=_FR_POSITIONS[scene.position])


def _spanish(scene: Scene, rng: random.Random) -> str:
    np_ = _romance_np(scene, rng, _ES_SHAPES, _ES_COLOURS, _ES_SIZES, _ES_COUNTS, False)
    template = rng.choice(_ES_TEMPLATES)
    bg = _ES_COLOURS[scene.background][0]
    return template.format(np=np_, bg=bg, pos=_ES_POSITIONS[scene.position])


def _change_case(caption: str, rng: random.Random) -> str:
    return caption.lower() if caption[0].isupper() else caption[0].upper() + caption[1:]


def _toggle_period(caption: str, rng: random.Random) -> str:
    return caption[:-1] if caption.endswith(".") else caption + "."


def _add_word(caption: str, rng: random.Random) -> str:
    words = caption.split(" ")
    words.insert(rng.randrange(1, len(words) + 1), rng.choice(_ADDED_WORDS))
    return " ".join(words)


def _drop_word(caption: str, rng: random.Random) -> str:
    words = caption.split(" ")
    if len(words) < 4:
        return caption
    del words[rng.randrange(len(words))]
    return " ".join(words)


def _add_suffix(caption: str, rng: random.Random) -> str:
    return caption + rng.choice(_SUFFIXES)
