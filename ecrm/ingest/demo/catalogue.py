"""The demo shop's product catalogue: ~200 products in category paths, CNY prices, and the basket
affinities (phone -> case/charger, dress -> shoes) that make later cross-sell rules find something."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

# category path -> (price range in CNY, product names). Brands and models are varied per product below.
CATEGORIES: dict[str, tuple[tuple[int, int], list[str]]] = {
    "Electronics/Phones": (
        (1299, 7999),
        [
            "5G Smartphone",
            "Flagship Phone",
            "Camera Phone",
            "Compact Phone",
            "Gaming Phone",
            "Foldable Phone",
        ],
    ),
    "Electronics/Phones/Accessories": (
        (29, 299),
        [
            "Phone Case",
            "Fast Charger 65W",
            "Screen Protector",
            "USB-C Cable",
            "Power Bank 20000mAh",
            "Wireless Charger",
            "Car Phone Mount",
            "MagSafe Wallet",
        ],
    ),
    "Electronics/Audio": (
        (99, 2499),
        [
            "True Wireless Earbuds",
            "Noise-cancelling Headphones",
            "Bluetooth Speaker",
            "Smart Speaker",
            "Sports Earphones",
        ],
    ),
    "Electronics/Computers": (
        (2999, 12999),
        ['Ultrabook 14"', 'Gaming Laptop 16"', 'Tablet 11"', "Mini PC", '27" 4K Monitor'],
    ),
    "Electronics/Computers/Accessories": (
        (49, 899),
        [
            "Mechanical Keyboard",
            "Wireless Mouse",
            "Laptop Sleeve",
            "USB-C Hub",
            "Laptop Stand",
            "Webcam 1080p",
        ],
    ),
    "Electronics/Wearables": ((199, 3299), ["Smart Watch", "Fitness Band", "Kids' Smart Watch"]),
    "Home/Kitchen": (
        (39, 1999),
        [
            "Rice Cooker",
            "Electric Kettle",
            "Non-stick Wok",
            "Chef's Knife Set",
            "Air Fryer",
            "Soy Milk Maker",
            "Chopping Board",
            "Thermos Flask",
        ],
    ),
    "Home/Kitchen/Coffee": (
        (59, 4999),
        ["Espresso Machine", "Pour-over Kettle", "Coffee Grinder", "Drip Coffee Bags", "Arabica Beans 500g"],
    ),
    "Home/Bedding": ((79, 1299), ["Silk Pillowcase", "Down Duvet", "Memory Foam Pillow", "Cotton Sheet Set"]),
    "Home/Storage": ((19, 399), ["Storage Boxes (3)", "Closet Organiser", "Vacuum Storage Bags"]),
    "Beauty/Skincare": (
        (59, 1299),
        [
            "Gentle Cleanser",
            "Hyaluronic Serum",
            "Sunscreen SPF50",
            "Night Cream",
            "Sheet Masks (10)",
            "Toner",
            "Eye Cream",
        ],
    ),
    "Beauty/Makeup": (
        (69, 599),
        ["Matte Lipstick", "Cushion Foundation", "Eyeshadow Palette", "Mascara", "Setting Spray"],
    ),
    "Beauty/Fragrance": ((199, 1599), ["Eau de Parfum 50ml", "Body Mist", "Scented Candle"]),
    "Fashion/Women/Dresses": (
        (129, 899),
        [
            "Silk Midi Dress",
            "Floral Summer Dress",
            "Knit Sweater Dress",
            "Qipao-style Dress",
            "Linen Shirt Dress",
        ],
    ),
    "Fashion/Women/Tops": ((59, 499), ["Cotton T-shirt", "Chiffon Blouse", "Cashmere Cardigan", "Hoodie"]),
    "Fashion/Men/Shirts": ((79, 599), ["Oxford Shirt", "Polo Shirt", "Linen Shirt", "Flannel Shirt"]),
    "Fashion/Men/Trousers": ((99, 699), ["Slim Chinos", "Denim Jeans", "Jogger Pants"]),
    "Fashion/Shoes": (
        (199, 1499),
        ["Running Shoes", "Leather Loafers", "Canvas Sneakers", "Ankle Boots", "Sandals"],
    ),
    "Fashion/Bags": ((99, 2999), ["Leather Tote", "Backpack", "Crossbody Bag", "Wallet"]),
    "Food/Tea": (
        (39, 899),
        [
            "Longjing Green Tea 250g",
            "Pu'er Tea Cake",
            "Tieguanyin Oolong",
            "Jasmine Tea",
            "Black Tea Gift Box",
        ],
    ),
    "Food/Snacks": ((15, 199), ["Mixed Nuts 1kg", "Dried Mango", "Beef Jerky", "Mooncake Gift Box"]),
    "Home/Kitchen/Tea Ware": ((69, 1299), ["Gongfu Tea Set", "Yixing Clay Teapot", "Glass Tea Infuser"]),
    "Baby/Diapers": ((89, 299), ["Diapers Size M (84)", "Diapers Size L (68)", "Pull-up Pants XL"]),
    "Baby/Care": ((29, 399), ["Baby Wipes (10 packs)", "Baby Lotion", "Bottle Steriliser", "Baby Bottle"]),
    "Sports/Outdoor": (
        (49, 2999),
        ["Yoga Mat", "Camping Tent", "Hiking Backpack", "Dumbbell Set", "Cycling Helmet"],
    ),
}

BRANDS = {
    "Electronics": [
        "Huawei",
        "Xiaomi",
        "OPPO",
        "vivo",
        "Honor",
        "Apple",
        "Anker",
        "Baseus",
        "Lenovo",
        "Sony",
    ],
    "Home": ["Midea", "Supor", "Joyoung", "Bear", "Muji", "Zojirushi", "Luckin Home"],
    "Beauty": ["Perfect Diary", "Florasis", "Proya", "Winona", "L'Oréal", "Shiseido", "Estée Lauder"],
    "Fashion": ["Uniqlo", "Li-Ning", "Anta", "UR", "Bosideng", "Peacebird", "Nike"],
    "Food": ["Three Squirrels", "Bestore", "Wufangzhai", "Xiaoguan Tea", "Bama Tea"],
    "Baby": ["Pampers", "Merries", "Babycare", "Pigeon"],
    "Sports": ["Decathlon", "Li-Ning", "Keep", "Naturehike"],
}

# Items in the first category pull items of the second into the same basket with this probability.
AFFINITIES: dict[str, list[tuple[str, float]]] = {
    "Electronics/Phones": [("Electronics/Phones/Accessories", 0.65), ("Electronics/Audio", 0.2)],
    "Electronics/Computers": [("Electronics/Computers/Accessories", 0.6)],
    "Electronics/Wearables": [("Electronics/Phones/Accessories", 0.25)],
    "Home/Kitchen/Coffee": [("Home/Kitchen/Coffee", 0.5)],
    "Food/Tea": [("Home/Kitchen/Tea Ware", 0.3), ("Food/Tea", 0.3)],
    "Beauty/Skincare": [("Beauty/Skincare", 0.5), ("Beauty/Makeup", 0.2)],
    "Beauty/Makeup": [("Beauty/Makeup", 0.35), ("Beauty/Skincare", 0.25)],
    "Fashion/Women/Dresses": [("Fashion/Shoes", 0.35), ("Fashion/Bags", 0.25)],
    "Fashion/Men/Shirts": [("Fashion/Men/Trousers", 0.4)],
    "Baby/Diapers": [("Baby/Care", 0.6)],
    "Sports/Outdoor": [("Fashion/Shoes", 0.2)],
}

# Customers lean towards a couple of departments; these are the weights of a department as a favourite.
DEPARTMENT_WEIGHTS = {
    "Electronics": 30,
    "Home": 20,
    "Beauty": 20,
    "Fashion": 18,
    "Food": 6,
    "Baby": 4,
    "Sports": 2,
}


@dataclass(frozen=True)
class DemoProduct:
    """One catalogue entry before it is stored."""

    sku: str
    name: str
    category_path: str
    price: Decimal


def build_catalogue(rng: random.Random, size: int = 200) -> list[DemoProduct]:
    """`size` products spread over every category (each category at least 3), deterministic for a seed."""
    paths = list(CATEGORIES)
    per_category = {p: 3 for p in paths}
    for _ in range(max(0, size - 3 * len(paths))):
        per_category[rng.choice(paths)] += 1
    products: list[DemoProduct] = []
    n = 0
    for path in paths:
        (low, high), names = CATEGORIES[path]
        brands = BRANDS[path.split("/")[0]]
        for i in range(per_category[path]):
            n += 1
            base = names[i % len(names)]
            brand = rng.choice(brands)
            edition = (
                "" if i < len(names) else f" {rng.choice(['Pro', 'Lite', 'Max', 'Plus', 'Mini', '2026'])}"
            )
            # Prices end in 9 like real shop prices; log-uniform so most items are cheap.
            price = int(low * (high / low) ** rng.random())
            price = max(low, price - price % 10 + 9) if price >= 20 else price
            sku = f"{path.split('/')[0][:3].upper()}-{n:04d}"
            products.append(
                DemoProduct(
                    sku=sku,
                    name=f"{brand} {base}{edition}",
                    category_path=path,
                    price=Decimal(price).quantize(Decimal("0.01")),
                )
            )
    return products
