"""Deterministic synthetic WebShop catalogues in the original raw format.

    python -m hiper_envs.webshop.generate --products 1000 --out DIR [--seed 0] [--gzip]

writes ``items_shuffle_<N>.json``, ``items_ins_v2_<N>.json`` and ``items_human_ins.json`` (REFERENCE
B.5) to DIR. Products come from WebShop's five top categories (beauty, grocery, fashion, furniture,
electronics) with category paths, attributes, options (colour, size, flavour, ...), single prices,
price ranges and missing prices, bullet points, descriptions, a synthetic instruction per product and
0-3 human-style instructions. The same seed gives the same bytes; output is streamed, so 1.2M
products fit in little memory. The bundled catalogue is ``--products 1000 --seed 0 --gzip``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TOPS = {
    "beauty": "Beauty & Personal Care",
    "grocery": "Grocery & Gourmet Food",
    "fashion": "Clothing, Shoes & Jewelry",
    "furniture": "Home & Kitchen › Furniture",
    "electronics": "Electronics",
}
COLORS = [
    "black",
    "white",
    "navy blue",
    "light gray",
    "dark brown",
    "burgundy",
    "olive green",
    "beige",
    "pink",
    "red",
    "royal blue",
    "ivory",
    "charcoal",
    "black | white",
    "rose gold",
    "teal",
]
SIZES = ["small", "medium", "large", "x-large", "xx-large"]
BRANDS = [
    "Amberly",
    "Northvale",
    "Kestra",
    "Lumora",
    "Brightwell",
    "Corvia",
    "Havenly",
    "Solenne",
    "Trailmark",
    "Vireo",
    "Oakhurst",
    "Pellora",
    "Quintessa",
    "Rivane",
    "Stellion",
    "Tamsin",
    "Umbria",
    "Velour",
    "Wrenfield",
    "Xandor",
    "Yarrowby",
    "Zephyra",
    "Alderic",
    "Bramble",
    "Caldera",
    "Dovetail",
    "Elmstead",
    "Fennick",
    "Glenmoor",
    "Holloway",
    "Ironleaf",
    "Juniper",
    "Kinross",
    "Larkspur",
    "Maplecrest",
]


@dataclass(frozen=True)
class Kind:
    """A product type: its query, category path below the top, nouns, attributes and options."""

    top: str
    query: str
    path: tuple[str, ...]
    nouns: tuple[str, ...]
    attributes: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    price: tuple[float, float]


def _k(top, query, path, nouns, attributes, options, price) -> Kind:
    return Kind(
        top,
        query,
        tuple(path.split(" › ")),
        tuple(nouns.split(",")),
        tuple(attributes.split(",")),
        tuple((n, tuple(v)) for n, v in options),
        price,
    )


KINDS = [
    _k(
        "beauty",
        "shampoo",
        "Hair Care › Shampoo & Conditioner › Shampoos",
        "shampoo,hair wash",
        "sulfate free,paraben free,natural ingredients,dry hair,damaged hair,cruelty free,long lasting",
        [
            ("size", ["8 fl oz", "16 fl oz", "32 fl oz"]),
            ("scent", ["lavender", "coconut", "unscented", "citrus"]),
        ],
        (6, 30),
    ),
    _k(
        "beauty",
        "lipstick",
        "Makeup › Lips › Lipstick",
        "lipstick,lip color",
        "long lasting,cruelty free,matte finish,vitamin e,easy apply,high pigment",
        [
            ("color", ["red", "pink", "burgundy", "nude beige", "coral", "plum"]),
            ("size", ["single", "pack of 2", "pack of 3"]),
        ],
        (5, 25),
    ),
    _k(
        "beauty",
        "face moisturizer",
        "Skin Care › Face › Creams & Moisturizers",
        "moisturizer,face cream",
        "fragrance free,sensitive skin,hyaluronic acid,oil free,anti aging,spf 30",
        [("size", ["1.7 oz", "3.4 oz"]), ("scent", ["unscented", "rose", "aloe"])],
        (10, 60),
    ),
    _k(
        "beauty",
        "hair extensions",
        "Hair Care › Hair Extensions, Wigs & Accessories › Extensions",
        "hair extensions,clip in extensions",
        "human hair,clip in,heat resistant,natural looking,easy apply",
        [
            ("color", ["black", "dark brown", "honey blonde", "light brown"]),
            ("size", ["14 inch", "18 inch", "22 inch"]),
        ],
        (20, 120),
    ),
    _k(
        "beauty",
        "nail polish",
        "Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
        "nail polish,nail lacquer",
        "quick dry,long lasting,non toxic,gel finish,chip resistant",
        [("color", ["red", "pink", "teal", "white", "black", "lilac"]), ("size", ["0.5 fl oz", "pack of 3"])],
        (4, 20),
    ),
    _k(
        "grocery",
        "coffee beans",
        "Beverages › Coffee, Tea & Cocoa › Coffee › Whole Coffee Beans",
        "coffee beans,coffee",
        "fair trade,dark roast,medium roast,single origin,low acid,usda organic",
        [
            ("flavor name", ["hazelnut", "vanilla", "french roast", "house blend"]),
            ("size", ["12 ounce", "2 pound"]),
        ],
        (8, 40),
    ),
    _k(
        "grocery",
        "protein bars",
        "Snack Foods › Bars › Protein Bars",
        "protein bars,snack bars",
        "gluten free,high protein,low sugar,keto friendly,non gmo,plant based",
        [
            ("flavor name", ["chocolate chip", "peanut butter", "cookie dough", "lemon"]),
            ("size", ["pack of 6", "pack of 12"]),
        ],
        (10, 45),
    ),
    _k(
        "grocery",
        "herbal tea",
        "Beverages › Coffee, Tea & Cocoa › Tea › Herbal",
        "herbal tea,tea bags",
        "caffeine free,usda organic,non gmo,kosher,individually wrapped",
        [
            ("flavor name", ["chamomile", "rooibos", "ginger", "hibiscus"]),
            ("size", ["20 count", "40 count", "100 count"]),
        ],
        (4, 20),
    ),
    _k(
        "grocery",
        "olive oil",
        "Pantry Staples › Cooking Oils › Olive Oil",
        "olive oil,cooking oil",
        "extra virgin,cold pressed,non gmo,kosher,gluten free",
        [("size", ["16.9 fl oz", "33.8 fl oz", "1 gallon"])],
        (9, 50),
    ),
    _k(
        "grocery",
        "potato chips",
        "Snack Foods › Chips & Crisps › Potato Chips",
        "potato chips,chips",
        "gluten free,kettle cooked,non gmo,low sodium,vegan",
        [
            ("flavor name", ["sea salt", "barbecue", "sour cream and onion", "jalapeno"]),
            ("size", ["pack of 8", "pack of 24"]),
        ],
        (6, 35),
    ),
    _k(
        "fashion",
        "men's t-shirt",
        "Men › Clothing › Shirts › T-Shirts",
        "t-shirt,tee shirt",
        "short sleeve,cotton,machine wash,slim fit,crew neck,moisture wicking",
        [("color", COLORS[:8]), ("size", SIZES)],
        (8, 35),
    ),
    _k(
        "fashion",
        "women's dress",
        "Women › Clothing › Dresses",
        "dress,maxi dress",
        "long sleeve,machine wash,polyester,v neck,pockets,elastic waist",
        [("color", ["black", "navy blue", "burgundy", "pink", "olive green"]), ("size", SIZES[:4])],
        (18, 70),
    ),
    _k(
        "fashion",
        "running shoes",
        "Men › Shoes › Athletic › Running",
        "running shoes,sneakers",
        "rubber sole,lightweight,breathable mesh,arch support,non slip",
        [("color", ["black", "white", "royal blue", "light gray"]), ("size", ["8", "9", "10", "11", "12"])],
        (30, 120),
    ),
    _k(
        "fashion",
        "women's jeans",
        "Women › Clothing › Jeans",
        "jeans,denim pants",
        "high waist,stretch fabric,machine wash,button closure,skinny fit",
        [("color", ["dark rinse", "light rinse", "black"]), ("size", ["26", "28", "30", "32"])],
        (20, 60),
    ),
    _k(
        "fashion",
        "hoodie",
        "Men › Clothing › Fashion Hoodies & Sweatshirts",
        "hoodie,sweatshirt",
        "fleece lined,drawstring closure,machine wash,long sleeve,kangaroo pocket",
        [("color", ["black", "charcoal", "navy blue", "burgundy", "beige"]), ("size", SIZES)],
        (20, 55),
    ),
    _k(
        "furniture",
        "office chair",
        "Home Office Furniture › Home Office Chairs › Desk Chairs",
        "office chair,desk chair",
        "lumbar support,height adjustable,easy assembly,swivel,high back,mesh back",
        [("color", ["black", "white", "light gray"]), ("style", ["with arms", "armless"])],
        (60, 300),
    ),
    _k(
        "furniture",
        "coffee table",
        "Living Room Furniture › Tables › Coffee Tables",
        "coffee table,table",
        "solid wood,easy assembly,storage space,living room,mid century",
        [("color", ["walnut", "black", "white", "natural oak"]), ("size", ["36 inch", "42 inch", "48 inch"])],
        (50, 250),
    ),
    _k(
        "furniture",
        "bookshelf",
        "Home Office Furniture › Bookcases",
        "bookshelf,bookcase",
        "5 tier,easy assembly,engineered wood,space saving,sturdy frame",
        [("color", ["black", "white", "rustic brown"]), ("size", ["3 tier", "5 tier"])],
        (40, 180),
    ),
    _k(
        "furniture",
        "bar stools",
        "Kitchen Furniture › Bar Stools",
        "bar stools,counter stools",
        "set of 2,faux leather,footrest,swivel,height adjustable",
        [("color", ["black", "beige", "light gray"]), ("size", ["24 inch", "30 inch"])],
        (60, 220),
    ),
    _k(
        "furniture",
        "bed frame",
        "Bedroom Furniture › Beds, Frames & Bases › Bed Frames",
        "bed frame,platform bed",
        "metal frame,under bed storage,no box spring needed,easy assembly,noise free",
        [("size", ["twin", "full", "queen", "king"])],
        (90, 400),
    ),
    _k(
        "electronics",
        "wireless earbuds",
        "Headphones, Earbuds & Accessories › Earbuds",
        "earbuds,headphones",
        "noise cancelling,bluetooth 5.3,water resistant,long battery life,charging case",
        [("color", ["black", "white", "navy blue"]), ("style", ["with charging case", "sport edition"])],
        (20, 150),
    ),
    _k(
        "electronics",
        "phone case",
        "Cell Phones & Accessories › Cases, Holsters & Sleeves",
        "phone case,case",
        "shockproof,wireless charging,slim fit,raised edges,scratch resistant",
        [
            ("color", ["black", "clear", "pink", "royal blue", "olive green"]),
            ("size", ["iphone 14", "iphone 15", "galaxy s23"]),
        ],
        (8, 30),
    ),
    _k(
        "electronics",
        "usb c cable",
        "Computers & Accessories › Cables › USB Cables",
        "cable,charging cord",
        "fast charging,braided nylon,data transfer,durable",
        [("color", ["black", "white"]), ("size", ["3 ft", "6 ft", "10 ft"])],
        (6, 20),
    ),
    _k(
        "electronics",
        "bluetooth speaker",
        "Portable Audio & Video › Portable Speakers",
        "speaker,bluetooth speaker",
        "waterproof,long battery life,bass boost,portable,built in microphone",
        [("color", ["black", "teal", "red", "light gray"]), ("size", ["mini", "classic", "max"])],
        (25, 140),
    ),
    _k(
        "electronics",
        "power bank",
        "Cell Phones & Accessories › Chargers & Power Adapters › Portable Power Banks",
        "power bank,portable charger",
        "fast charging,usb c,compact design,led display,dual output",
        [("size", ["10000mah", "20000mah", "26800mah"])],
        (15, 70),
    ),
]
FEATURE_WORDS = ["everyday use", "travel", "home", "gift", "office", "outdoor use", "family"]
SYNTHETIC_TEMPLATES = [
    "i need {article} {attrs} {query}",
    "i am looking for {article} {query} that is {attrs_and}",
    "i want {article} {attrs} {query}",
    "find me {article} {query}, {attrs_and}",
]
HUMAN_TEMPLATES = [
    "Can you help me find {article} {query} that is {attrs_and}{opts}?",
    "I'm shopping for {article} {attrs} {query}{opts}.",
    "Looking for {article} {query} with {attrs_and}{opts}",
    "Please get me {article} {attrs} {query}{opts}.",
]


def make_asin(i: int) -> str:
    """A unique ten-character ASIN per index (a bijection of the index onto base 36)."""
    n = (i * 2_654_435_761 + 97_531) % 36**8
    digits = ""
    for _ in range(8):
        n, d = divmod(n, 36)
        digits += "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d]
    return "B0" + digits


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join_and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _price(rng: random.Random, low: float, high: float) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    a = round(rng.uniform(low, high), 2)
    if roll < 0.2:
        return f"${a:.2f} - ${a + round(rng.uniform(2, high / 2), 2):.2f}"
    return f"${a:.2f}"


def make_product(i: int, rng: random.Random) -> tuple[dict, dict, list[dict]]:
    """One raw product, its items_ins_v2 record and its human instructions."""
    kind = KINDS[rng.randrange(len(KINDS))]
    brand = rng.choice(BRANDS)
    attributes = rng.sample(kind.attributes, rng.randint(2, min(4, len(kind.attributes))))
    noun = rng.choice(kind.nouns)
    feature = rng.choice(FEATURE_WORDS)
    name = f"{brand} {' '.join(a.title() for a in attributes[:2])} {noun.title()} for {feature.title()}"
    options = {}
    for option_name, values in kind.options:
        if rng.random() < 0.95:
            options[option_name] = rng.sample(values, rng.randint(min(2, len(values)), len(values)))
    bullets = [f"{a.capitalize()}: made for {feature} with care by {brand}." for a in attributes]
    bullets.append(f"What you get: one {noun} from {brand}, backed by a 30-day return policy.")
    description = (
        f"The {brand} {noun} is {_article(attributes[0])} {attributes[0]} choice for {feature}. "
        f"It is {_join_and(attributes)}, and every {kind.query} is checked before it ships."
    )
    asin = make_asin(i)
    raw = {
        "asin": asin,
        "name": name,
        "full_description": description,
        "small_description": bullets,
        "pricing": _price(rng, *kind.price),
        "images": [],
        "customization_options": {n: [{"value": v, "image": None} for v in vs] for n, vs in options.items()}
        or None,
        "category": kind.top,
        "query": kind.query,
        "product_category": " › ".join((TOPS[kind.top], *kind.path)),
    }
    goal_attrs = rng.sample(attributes, rng.randint(1, min(2, len(attributes))))
    template = rng.choice(SYNTHETIC_TEMPLATES)
    instruction = template.format(
        article=_article(goal_attrs[0]),
        attrs=" ".join(goal_attrs),
        attrs_and=_join_and(goal_attrs),
        query=kind.query,
    )
    ins = {"attributes": attributes, "instruction": instruction, "instruction_attributes": goal_attrs}
    humans = []
    for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
        h_attrs = rng.sample(
            attributes, rng.randint(0 if rng.random() < 0.05 else 1, min(2, len(attributes)))
        )
        h_opts = [rng.choice(vs) for vs in options.values() if rng.random() < 0.8]
        text = rng.choice(HUMAN_TEMPLATES).format(
            article=_article(kind.query),
            query=kind.query,
            attrs=" ".join(h_attrs),
            attrs_and=_join_and(h_attrs) if h_attrs else "well reviewed",
            opts=(" in " + _join_and(h_opts)) if h_opts else "",
        )
        humans.append({"instruction": text, "instruction_attributes": h_attrs, "instruction_options": h_opts})
    return raw, ins, humans


def generate(n_products: int, seed: int = 0) -> Iterator[tuple[dict, dict, list[dict]]]:
    """The `n_products` products of catalogue `seed`, in order."""
    rng = random.Random(seed)
    for i in range(n_products):
        yield make_product(i, rng)


def write_catalog(out: Path, n_products: int, seed: int = 0, compress: bool = False) -> dict[str, Path]:
    """Write the three raw files to `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".json.gz" if compress else ".json"
    paths = {
        "products": out / f"items_shuffle_{n_products}{suffix}",
        "attributes": out / f"items_ins_v2_{n_products}{suffix}",
        "human": out / f"items_human_ins{suffix}",
    }

    def open_out(path: Path) -> IO[str]:
        if compress:  # mtime=0: the same catalogue gives the same bytes
            return io.TextIOWrapper(gzip.GzipFile(path, "wb", mtime=0), encoding="utf-8")
        return open(path, "w", encoding="utf-8")

    with (
        open_out(paths["products"]) as fp,
        open_out(paths["attributes"]) as fa,
        open_out(paths["human"]) as fh,
    ):
        fp.write("[")
        fa.write("{")
        fh.write("{")
        n_human = 0
        for i, (raw, ins, humans) in enumerate(generate(n_products, seed)):
            sep = ",\n" if i else "\n"
            fp.write(sep + json.dumps(raw, ensure_ascii=False))
            fa.write(sep + json.dumps(raw["asin"]) + ": " + json.dumps(ins, ensure_ascii=False))
            if humans:
                fh.write((",\n" if n_human else "\n") + json.dumps(raw["asin"]) + ": " + json.dumps(humans))
                n_human += 1
        fp.write("\n]\n")
        fa.write("\n}\n")
        fh.write("\n}\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--products", type=int, default=1000, help="number of products (1.2M for scale tests)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="catalogue seed")
    parser.add_argument("--gzip", action="store_true", help="write .json.gz files")
    args = parser.parse_args(argv)
    for path in write_catalog(args.out, args.products, args.seed, args.gzip).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
