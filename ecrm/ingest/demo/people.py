"""Believable people for the demo shop: mostly Chinese customers (names from Faker's zh_CN lists,
family name in `last_name`), some English-speaking ones, CN mobile numbers in E.164, emails on the
mail services people in China actually use, cities weighted by population.

Fast on purpose: Faker's word lists are read once and sampled with our own seeded `random.Random`,
so a million people take seconds, not minutes, and the same seed gives the same shop.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from itertools import accumulate

from faker.providers.person import en_US as faker_en
from faker.providers.person import zh_CN as faker_zh

# Weighted family names (Faker's list carries real frequencies); given-name characters by gender.
_ZH_LAST = list(faker_zh.Provider.last_names.keys())
_ZH_LAST_CUM = list(accumulate(faker_zh.Provider.last_names.values()))
_ZH_FIRST = {
    "male": list(faker_zh.Provider.first_names_male),
    "female": list(faker_zh.Provider.first_names_female),
}
_ZH_ROMAN_FIRST = list(faker_zh.Provider.first_romanized_names)
_ZH_ROMAN_LAST = list(faker_zh.Provider.last_romanized_names)
# Pinyin of the commonest family names, so that most mailbox names match the person (王 -> wang).
_SURNAME_PINYIN = {
    pair[0]: pair[1:]
    for pair in (
        "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 吴wu 赵zhao 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu 林lin 郭guo "
        "何he 高gao 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 邓deng 冯feng 韩han 曹cao 曾zeng 彭peng 萧xiao "
        "蔡cai 潘pan 田tian 董dong 袁yuan 于yu 余yu 叶ye 蒋jiang 杜du 苏su 魏wei 程cheng 吕lv 丁ding 沈shen 任ren "
        "姚yao 卢lu 傅fu 钟zhong 姜jiang 崔cui 谭tan 廖liao 范fan 汪wang 陆lu 金jin 石shi 戴dai 贾jia 韦wei 夏xia "
        "邱qiu 方fang 侯hou 邹zou 熊xiong 孟meng 秦qin 白bai 江jiang 阎yan 薛xue 尹yin 段duan 雷lei 黎li 史shi "
        "龙long 陶tao 贺he 顾gu 毛mao 郝hao 龚gong 邵shao 万wan 钱qian 严yan 赖lai 覃qin 洪hong 武wu 莫mo 孔kong "
        "汤tang 向xiang 常chang 温wen 康kang 施shi 文wen 牛niu 樊fan 葛ge 邢xing 安an 齐qi 易yi 乔qiao 伍wu 庞pang "
        "颜yan 倪ni 庄zhuang "
    ).split()
}
_EN_FIRST = {
    "male": list(faker_en.Provider.first_names_male.keys()),
    "female": list(faker_en.Provider.first_names_female.keys()),
}
_EN_LAST = list(faker_en.Provider.last_names.keys())

# (city, weight) in China, tier-1 cities heaviest; written the way a Chinese shop stores them.
CN_CITIES = [
    ("上海", 14),
    ("北京", 13),
    ("深圳", 10),
    ("广州", 10),
    ("杭州", 8),
    ("成都", 8),
    ("重庆", 6),
    ("南京", 6),
    ("武汉", 6),
    ("西安", 5),
    ("苏州", 5),
    ("天津", 4),
    ("长沙", 4),
    ("郑州", 4),
    ("青岛", 3),
    ("厦门", 3),
    ("宁波", 3),
    ("合肥", 3),
    ("昆明", 2),
    ("大连", 2),
    ("沈阳", 2),
    ("济南", 2),
    ("福州", 2),
    ("无锡", 2),
    ("东莞", 2),
    ("佛山", 2),
    ("哈尔滨", 1),
    ("长春", 1),
    ("南宁", 1),
    ("贵阳", 1),
    ("南昌", 1),
    ("太原", 1),
    ("石家庄", 1),
    ("兰州", 1),
    ("海口", 1),
    ("乌鲁木齐", 1),
    ("拉萨", 1),
]
# Overseas customers of a cross-border shop: (city, country, phone country code, local number template).
# Every template leaves at least 7 free digits, so a million customers never run out of numbers.
ABROAD = [
    ("Singapore", "SG", "65", "9#######"),
    ("Hong Kong", "HK", "852", "9#######"),
    ("Kuala Lumpur", "MY", "60", "12#######"),
    ("Sydney", "AU", "61", "4########"),
    ("Vancouver", "CA", "1", "604#######"),
    ("San Francisco", "US", "1", "415#######"),
    ("New York", "US", "1", "917#######"),
    ("London", "GB", "44", "7#########"),
    ("Berlin", "DE", "49", "15#########"),
    ("Tokyo", "JP", "81", "90########"),
]
_CN_CITY_NAMES = [c for c, _ in CN_CITIES]
_CN_CITY_CUM = list(accumulate(w for _, w in CN_CITIES))

# Mobile prefixes of China Mobile, Unicom and Telecom.
CN_MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]
CN_MAIL = [
    ("qq.com", 40),
    ("163.com", 25),
    ("126.com", 10),
    ("gmail.com", 8),
    ("outlook.com", 6),
    ("foxmail.com", 5),
    ("sina.com", 4),
    ("139.com", 2),
]
EN_MAIL = [("gmail.com", 55), ("outlook.com", 20), ("yahoo.com", 10), ("icloud.com", 10), ("hotmail.com", 5)]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


@dataclass
class Person:
    """A generated person: profile fields already normalised the way the services store them."""

    first_name: str
    last_name: str
    gender: str
    locale: str
    city: str
    country: str
    email: str | None
    phone: str | None
    birthday: dt.date | None
    chinese: bool
    email_local: str = ""
    extra: dict = field(default_factory=dict)


class PeopleFactory:
    """Makes unique people: every email and phone it hands out is new (and not in `taken`)."""

    def __init__(self, rng: random.Random, *, taken_emails=(), taken_phones=(), today: dt.date | None = None):
        self.rng = rng
        self.emails: set[str] = set(taken_emails)
        self.phones: set[str] = set(taken_phones)
        self.today = today or dt.datetime.now(dt.UTC).date()

    # -- names
    def chinese_name(self, gender: str) -> tuple[str, str]:
        rng = self.rng
        last = rng.choices(_ZH_LAST, cum_weights=_ZH_LAST_CUM)[0]
        chars = _ZH_FIRST[gender]
        first = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.6 else "")
        return first, last

    def english_name(self, gender: str) -> tuple[str, str]:
        return self.rng.choice(_EN_FIRST[gender]), self.rng.choice(_EN_LAST)

    # -- identifiers
    def cn_mobile(self) -> str:
        rng = self.rng
        while True:
            phone = f"+86{rng.choice(CN_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def abroad_phone(self, code: str, template: str) -> str:
        rng = self.rng
        while True:
            local = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in template)
            phone = f"+{code}{local}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def claim_email(self, local: str, domain: str) -> str:
        """`local@domain`, with digits appended until it is unique (as people do when signing up)."""
        rng = self.rng
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{rng.randrange(10, 9999)}@{domain}"
        self.emails.add(email)
        return email

    def email_for(self, chinese: bool, first_name: str, last_name: str) -> str:
        rng = self.rng
        if chinese:
            domain = _weighted(rng, CN_MAIL)
            if domain == "qq.com" and rng.random() < 0.7:
                local = str(rng.randrange(10**7, 3 * 10**9))  # QQ numbers are the mailbox name
            else:
                first = rng.choice(_ZH_ROMAN_FIRST).lower()
                last = _SURNAME_PINYIN.get(last_name) or rng.choice(_ZH_ROMAN_LAST).lower()
                style = rng.random()
                local = (
                    f"{last}{first}"
                    if style < 0.4
                    else f"{first}.{last}"
                    if style < 0.7
                    else f"{last}{first}{rng.randrange(70, 100)}"
                )
        else:
            domain = _weighted(rng, EN_MAIL)
            f, la = first_name.lower(), last_name.lower().replace("'", "")
            style = rng.random()
            local = (
                f"{f}.{la}"
                if style < 0.5
                else f"{f[0]}{la}"
                if style < 0.8
                else f"{f}{la}{rng.randrange(1, 99)}"
            )
        return self.claim_email(local, domain)

    # -- a whole person
    def make(self) -> Person:
        rng = self.rng
        gender = "female" if rng.random() < 0.56 else "male"
        abroad = rng.random() < 0.07
        chinese = rng.random() < (0.45 if abroad else 0.96)
        first, last = self.chinese_name(gender) if chinese else self.english_name(gender)
        if abroad:
            city, country, code, template = rng.choice(ABROAD)
            phone = self.abroad_phone(code, template) if rng.random() < 0.6 else None
        else:
            city = rng.choices(_CN_CITY_NAMES, cum_weights=_CN_CITY_CUM)[0]
            country = "CN"
            phone = self.cn_mobile() if rng.random() < 0.92 else None
        # Most people sign up with email; phone-only accounts (common on Chinese apps) have none.
        email = self.email_for(chinese, first, last) if (phone is None or rng.random() < 0.85) else None
        age = int(rng.triangular(18, 70, 29))
        birthday = (
            self.today - dt.timedelta(days=age * 365 + rng.randrange(365)) if rng.random() < 0.7 else None
        )
        if rng.random() < 0.08:
            gender = ""  # not told
        return Person(
            first_name=first,
            last_name=last,
            gender=gender,
            locale="zh-hans" if chinese else "en",
            city=city,
            country=country,
            email=email,
            phone=phone,
            birthday=birthday,
            chinese=chinese,
        )

    # -- a second profile of the same person (for the merge queue)
    def duplicate_of(self, person: Person) -> Person:
        """The same person signing up again: same name, and an email with a typo / another provider,
        or a phone that differs only in the carrier prefix (same last 8 digits)."""
        rng = self.rng
        email = phone = None
        cn_phone = (person.phone or "").startswith("+86")
        # The phone variant needs a Chinese mobile (same last 8 digits); otherwise vary the email.
        if person.email and (not cn_phone or rng.random() < 0.6):
            local, domain = person.email.split("@")
            if len(local) >= 8 and rng.random() < 0.6:  # shorter: a swap is too different
                i = rng.randrange(1, len(local) - 2)
                local = local[:i] + local[i + 1] + local[i] + local[i + 2 :]  # swapped letters
                if local == person.email.split("@")[0]:
                    local += str(rng.randrange(10))
            else:
                domain = rng.choice([d for d, _ in (CN_MAIL if person.chinese else EN_MAIL) if d != domain])
            email = self.claim_email(local, domain)
        else:
            if person.phone and person.phone.startswith("+86"):
                tail = person.phone[-8:]
                for prefix in rng.sample(CN_MOBILE_PREFIXES, len(CN_MOBILE_PREFIXES)):
                    candidate = f"+86{prefix}{tail}"
                    if candidate not in self.phones:
                        phone = candidate
                        self.phones.add(phone)
                        break
            if phone is None:  # abroad number: fall back to a second mailbox
                email = self.email_for(person.chinese, person.first_name, person.last_name)
            elif rng.random() < 0.5:
                email = self.email_for(person.chinese, person.first_name, person.last_name)
        return Person(
            first_name=person.first_name,
            last_name=person.last_name,
            gender=person.gender,
            locale=person.locale,
            city=person.city,
            country=person.country,
            email=email,
            phone=phone,
            birthday=person.birthday if rng.random() < 0.5 else None,
            chinese=person.chinese,
        )
