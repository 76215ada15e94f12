"""Cell constructors for the notebook sources in tools/notebooks/."""

from nbformat.v4 import new_code_cell, new_markdown_cell


def md(text):
    return new_markdown_cell(text.strip())


def code(text, tags=None):
    c = new_code_cell(text.strip())
    if tags:
        c.metadata["tags"] = tags
    return c
