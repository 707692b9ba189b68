"""Text processing for the knowledge base: Markdown/HTML rendering (sanitised), plain-text extraction,
and the tokenizer shared by indexing and querying (jieba for Chinese, a light stemmer for English).

Indexing and querying must use exactly the same `tokenize`, otherwise terms never meet.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# --- Rendering -------------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}

# Raw HTML inside Markdown is not passed through: authors who need HTML pick the HTML format, which
# is sanitised the same way. Sanitising the rendered output as well keeps one rule for both.
_markdown = (
    MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
)


def sanitize_html(raw: str) -> str:
    """Allow-list sanitising (nh3): no scripts, event handlers, styles or javascript: URLs."""
    return nh3.clean(
        raw or "",
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_body(body: str, body_format: str) -> str:
    """The article body as safe HTML, from Markdown or from (already untrusted) HTML."""
    if body_format == "markdown":
        return sanitize_html(_markdown.render(body or ""))
    return sanitize_html(body or "")


_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_END_RE = re.compile(r"</(p|div|li|h[1-6]|tr|pre|blockquote)>|<br\s*/?>", re.I)
_WS_RE = re.compile(r"[ \t\r\f\v]+")
_NL_RE = re.compile(r"\n\s*\n+")


def html_to_text(safe_html: str) -> str:
    """Plain text of sanitised HTML: tags dropped, block ends become line breaks, entities decoded."""
    text = _BLOCK_END_RE.sub("\n", safe_html or "")
    text = html.unescape(_TAG_RE.sub("", text))
    text = _WS_RE.sub(" ", text)
    return _NL_RE.sub("\n\n", text).strip()


# --- Tokenizing ------------------------------------------------------------------------------------

_jieba_lock = threading.Lock()
_jieba = None


def _get_jieba():
    """jieba, initialised once and quietly. It ships its dictionary, so nothing is downloaded."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2A6DF
    )


# A run of Chinese characters, or a run of Latin letters/digits (with inner apostrophes).
_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:'[a-z]+)?")

EN_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours hi hello please thanks thank""".split()
)
ZH_STOPWORDS = frozenset(
    "的 了 是 我 你 他 她 它 们 我们 你们 在 和 与 及 或 就 都 而 也 吗 呢 吧 啊 呀 么 么 之 以 于 这 那 有 个 把 被 给 "
    "请 请问 谢谢 您好 你好 一下 怎么 什么 为什么 如何 可以 能 会 要 想 还 没有 已经 一个".split()
)

_VOWELS = set("aeiou")


def stem(word: str) -> str:
    """A deliberately light English stemmer: plural and -ing/-ed suffixes only, so 'shipping',
    'shipped' and 'ships' all become 'ship' and 'times' becomes 'time'. Short words are left alone."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("'s"):
        word = word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            if len(base) >= 3 and any(c in _VOWELS for c in base):
                if len(base) >= 2 and base[-1] == base[-2] and base[-1] not in "lsz":
                    base = base[:-1]  # shipp -> ship, stopp -> stop
                return base
            return word
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def tokenize(text: str) -> list[str]:
    """Index/query terms of `text`: Chinese segmented by jieba (search mode, so both '什么时候' and
    '时候' are terms), English lower-cased, stop words removed, lightly stemmed. Order preserved."""
    terms: list[str] = []
    for match in _RUN_RE.finditer(_normalize(text)):
        run = match.group(0)
        if _is_cjk(run[0]):
            for word in _get_jieba().cut_for_search(run):
                word = word.strip()
                if word and word not in ZH_STOPWORDS:
                    terms.append(word)
        else:
            word = run.replace("'", "")
            if word not in EN_STOPWORDS:
                terms.append(stem(word))
    return terms


def key_terms(text: str, limit: int = 10) -> list[str]:
    """The terms that characterise a customer message: TF-IDF keywords (jieba.analyse) for the
    Chinese part, the remaining content words for the rest. Returned as index terms."""
    text = _normalize(text)
    chinese = "".join(ch if _is_cjk(ch) else " " for ch in text)
    terms: list[str] = []
    if chinese.strip():
        import jieba.analyse

        _get_jieba()
        for word in jieba.analyse.extract_tags(chinese, topK=limit):
            terms.extend(tokenize(word))
    for term in tokenize("".join(" " if _is_cjk(ch) else ch for ch in text)):
        terms.append(term)
    seen: dict[str, None] = {}
    for term in terms:
        if len(term) > 1 or _is_cjk(term):
            seen.setdefault(term, None)
    return list(seen)[:limit]


# --- Highlighting ----------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def _match_spans(text: str, terms: set[str]) -> Iterator[tuple[int, int]]:
    lowered = _normalize(text)
    if len(lowered) != len(text):  # NFKC changed lengths (rare ligatures): highlight on the original
        lowered = text.lower()
    for m in _WORD_RE.finditer(lowered):
        if stem(m.group(0).replace("'", "")) in terms:
            yield m.start(), m.end()
    for term in terms:
        if term and _is_cjk(term[0]):
            start = lowered.find(term)
            while start != -1:
                yield start, start + len(term)
                start = lowered.find(term, start + len(term))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, terms: set[str]) -> SafeString:
    """`text` escaped, with every match of `terms` wrapped in <mark>."""
    spans = _merge(list(_match_spans(text, terms)))
    out, pos = [], 0
    for start, end in spans:
        out.append(escape(text[pos:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece above is escaped


def snippet(text: str, terms: set[str], width: int = 160) -> SafeString:
    """A window of about `width` characters around the first match, highlighted."""
    text = " ".join((text or "").split())
    spans = sorted(_match_spans(text, terms))
    if not spans:
        cut = text[:width]
        return highlight(cut + ("…" if len(text) > width else ""), terms)
    first = spans[0][0]
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    piece = ("…" if start > 0 else "") + text[start:end] + ("…" if end < len(text) else "")
    return highlight(piece, terms)
