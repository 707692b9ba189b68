"""What integrations send and read for knowledge-base articles."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

LanguageIn = Literal["en", "zh-hans"]
FormatIn = Literal["markdown", "html"]
VisibilityIn = Literal["public", "internal"]


class _In(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DraftIn(_In):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=200_000)
    body_format: FormatIn = "markdown"


class ArticleIn(DraftIn):
    slug: str = Field(min_length=1, max_length=120, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    language: LanguageIn
    category: str | None = Field(None, description="Category slug")
    visibility: VisibilityIn = "public"


class VersionOut(Schema):
    language: str
    number: int
    status: str
    is_live: bool
    title: str
    body: str
    body_format: str
    body_html: str
    published_at: dt.datetime | None


class ArticleOut(Schema):
    id: int
    slug: str
    category: str | None
    visibility: str
    versions: list[VersionOut]
    created: bool = False


class SearchHitOut(Schema):
    slug: str
    language: str
    version: int
    title: str
    score: float
    snippet_html: str
    url: str
