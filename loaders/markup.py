"""Text from stores and catalogues is published as text, never as markup.

STAC descriptions are CommonMark, which stac-browser renders; titles, keywords and provider
names are plain text. A store's `title`, `summary` or `long_name`, a catalogue's
descriptions and columns are data written by someone else:

- `markdown_text` escapes text for CommonMark so that a renderer shows it as written: no
  link, image, raw HTML, entity, code span or block, heading, list or quote can come from
  it. Every character that could open an inline construct is backslash-escaped (an
  underscore only where it could start emphasis, not inside a word), and at the start of a
  line those that open a block; leading blanks, which make an indented code block, go.
- `plain_text` is a title: control and bidirectional-override characters and line breaks
  become spaces, runs of blanks one, and it is cut at `limit` characters.
"""

from __future__ import annotations

import re

MAX_TITLE = 300  # characters of a title, keyword or provider name
MAX_DESCRIPTION = 10_000  # characters of one store's or catalogue's description

# C0 and C1 controls but tab and newline; Unicode's bidirectional embeddings, overrides and
# isolates, which make text display in another order than it reads (`Trojan Source`).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BLANKS = re.compile(r"\s+")
# Anywhere in a line: code spans, emphasis, links, images, raw HTML and autolinks, entities,
# GFM tables and strikethrough, and escapes themselves.
_INLINE = re.compile(r"([\\`*\[\]<>!&|~])")
# An underscore opens or closes emphasis only beside something that is not a letter or digit.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# At the start of a line: ATX headings, list bullets, setext underlines and thematic breaks,
# ordered list markers (`1.`, `1)`).
_LINE_START = re.compile(r"^(?:([#+\-=])|(\d{1,9})([.)]))")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain_text(value: object, limit: int = MAX_TITLE) -> str:
    """`value` as one line of plain text: no control characters, at most `limit` characters."""
    text = str(value)[: limit * 4]  # bounded work whatever its length
    return _cut(_BLANKS.sub(" ", _CONTROLS.sub(" ", text)).strip(), limit)


def _escape_line(line: str) -> str:
    line = _INLINE.sub(r"\\\1", line.strip())
    line = _UNDERSCORE.sub(r"\\_", line)
    return _LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", line)


def markdown_text(value: object, limit: int = MAX_DESCRIPTION) -> str:
    """`value` as CommonMark that renders as exactly this text (line breaks and paragraphs kept)."""
    text = str(value)[: limit * 4].replace("\r\n", "\n").replace("\r", "\n")
    text = _cut(_CONTROLS.sub(" ", text).strip(), limit)
    return "\n".join(_escape_line(line) for line in text.split("\n"))


def markdown_inline(value: object, limit: int = MAX_TITLE) -> str:
    """`value` as CommonMark within a sentence: one line, escaped."""
    return markdown_text(plain_text(value, limit), limit)
