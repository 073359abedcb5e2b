"""The HTML pages of a sweep (report.html, comparison.html): Jinja templates under templates/, rendered
by one function with autoescaping, so no text reaches a page unescaped; one stylesheet for both."""

from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from parbench.text import num

TEMPLATES = Path(__file__).parents[1] / "templates"


def css() -> Markup:
    return Markup((TEMPLATES / "report.css").read_text())


def table(frame: pd.DataFrame, cls: str = "") -> Markup:
    """A pandas table as HTML (pandas escapes every cell)."""
    return Markup(frame.to_html(index=False, border=0, classes=cls or None, float_format=num, na_rep="–", escape=True))


def render(template: str, **context) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(template).render(**context)
