"""Fixtures for the WebShop tests: a private index cache and a tiny catalogue in the original format."""

import json

import pytest

# Three real products plus three the original loader skips (repeated ASIN, "nan", 11 characters).
PRODUCTS = [
    {
        "asin": "B000000001",
        "name": "Acme Sulfate Free Shampoo for Dry Hair",
        "full_description": "A gentle shampoo.",
        "small_description": ["Sulfate free formula", "For dry hair"],
        "pricing": "$12.99",
        "images": ["https://example.invalid/a.jpg"],
        "customization_options": {
            "Size": [{"value": "8 fl oz", "image": None}, {"value": "16 fl oz", "image": None}],
            "Scent": [{"value": " Lavender/Mint ", "image": None}],
        },
        "category": "beauty",
        "query": "Shampoo ",
        "product_category": "Beauty & Personal Care › Hair Care › Shampoos",
    },
    {
        "asin": "B000000002",
        "name": "Zeta Cotton T-Shirt <b>Bold</b> & Co",
        "full_description": "Soft tee.",
        "small_description": "Cotton",
        "pricing": "$5.00 - $9.50",
        "images": [],
        "customization_options": {"Color": [{"value": "Navy Blue"}, {"value": "Black"}]},
        "category": "fashion",
        "query": "t-shirt",
        "product_category": "Clothing, Shoes & Jewelry › Men › Shirts",
    },
    {
        "asin": "B000000003",
        "name": "Oak Coffee Table",
        "full_description": "",
        "small_description": [],
        "pricing": None,
        "images": [""],
        "customization_options": None,
        "category": "furniture",
        "query": "coffee table",
        "product_category": "Home & Kitchen › Furniture › Tables",
    },
    {"asin": "B000000001", "name": "duplicate"},
    {"asin": "nan", "name": "no asin"},
    {"asin": "B0000000000X", "name": "asin too long"},
]
ATTRIBUTES = {
    "B000000001": {
        "attributes": ["sulfate free", "dry hair"],
        "instruction": "i need a sulfate free shampoo",
        "instruction_attributes": ["sulfate free"],
    },
    "B000000002": {
        "attributes": ["cotton", "machine wash"],
        "instruction": "i want a cotton t-shirt",
        "instruction_attributes": ["cotton"],
    },
}
HUMAN = {
    "B000000001": [
        {
            "instruction": "Find me shampoo for dry hair.",
            "instruction_attributes": ["dry hair"],
            "instruction_options": ["16 fl oz"],
        },
        {"instruction": "Any shampoo.", "instruction_attributes": [], "instruction_options": []},
    ]
}


def write_tiny(data_dir):
    """Write the tiny catalogue as plain-JSON original files into `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "items_shuffle.json").write_text(json.dumps(PRODUCTS))
    (data_dir / "items_ins_v2.json").write_text(json.dumps(ATTRIBUTES))
    (data_dir / "items_human_ins.json").write_text(json.dumps(HUMAN))
    return data_dir


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HIPER_BENCH_CACHE", str(tmp_path_factory.mktemp("hiper-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("tiny-webshop"))
