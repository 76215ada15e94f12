"""The findings brief for the policy office, in Chinese and English, every number from ``results.json``.

Layered: three to five key messages, the brief proper (at most 1,500 words; Chinese
characters count one each), and an annex table of every estimate. Modules:

``build``
    :func:`build_brief` -- ``<run>/brief/brief.{zh,en}.{docx,html}`` (``compare_to``: what
    changed since an earlier run).
``content``
    :func:`compose_brief` -- which sentence applies, from ``results.json``.
``charts``
    The brief's own charts in its language (forest chart, event studies), drawn from
    ``results.json`` into ``<run>/brief/figures/<stem>.<lang>.png``.
``changes``
    The section on what changed since an earlier run: the reasons (as ``study diff``
    gives them) and the headline estimates that moved.
``text``
    Number formatting, fixed wording, :func:`word_count`.
``templates/``
    ``sentences.<lang>.j2`` (every sentence with a number) and ``brief.html.j2``.
``claims.yaml``
    The source report's claims, with the source named.
``fonts``
    Font fallback chains (GB/T 9704 fonts, then Noto from the lock) and HTML subsetting.
``docx_writer``, ``html_writer``
    The two formats.
"""

from analysis.report.brief.build import build_brief
from analysis.report.brief.content import WORD_LIMIT, Brief, compose_brief
from analysis.report.brief.text import word_count

__all__ = ["WORD_LIMIT", "Brief", "build_brief", "compose_brief", "word_count"]
