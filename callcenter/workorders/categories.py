"""Categories as configuration: the water hotline's file is the default; errors name the key."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_FILE = Path(__file__).with_name("categories.yaml")


class CategoryError(Exception):
    pass


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    needs_field_work: bool
    urgency: Literal["urgent", "normal"]
    unit: str = Field(min_length=1)
    arrive_min: int | None = Field(default=None, gt=0)
    follow_up: Literal["always", "sample", "none"]
    subcategories: dict[str, str] = Field(default_factory=dict)
    dispatch_min: int = Field(default=3, gt=0)
    result: Literal["same_day", "none"] = "same_day"
    unit_reply_working_days: int = Field(default=3, gt=0)
    # How far past the running deadline an agent or the unit may extend it; longer needs a supervisor.
    max_extension_hours: int = Field(default=72, gt=0, le=24 * 366)


class Categories(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: dict[str, Category]

    def get(self, category_id: str | None, subcategory: str | None = None) -> Category:
        if category_id not in self.categories:
            known = ", ".join(sorted(self.categories))
            raise CategoryError(f"unknown category {category_id!r} (categories: {known})")
        category = self.categories[category_id]
        if subcategory is not None and subcategory not in category.subcategories:
            raise CategoryError(f"unknown sub-category {subcategory!r} of {category_id!r} "
                                f"(sub-categories: {', '.join(sorted(category.subcategories)) or 'none'})")
        return category


def load_categories(path: str | Path | None = None) -> Categories:
    path = Path(path) if path else DEFAULT_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CategoryError(f"{path}: categories file not found") from None
    except yaml.YAMLError as exc:
        raise CategoryError(f"{path}: not valid YAML: {exc}") from None
    defaults = raw.get("defaults", {}) if isinstance(raw, dict) else {}
    cats = raw.get("categories") if isinstance(raw, dict) else None
    if not isinstance(cats, dict):
        raise CategoryError(f"{path}: 'categories' must be a mapping of category id to its settings")
    try:
        return Categories(categories={k: {**defaults, **(v or {})} for k, v in cats.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CategoryError(f"{path}: {problems}") from None
