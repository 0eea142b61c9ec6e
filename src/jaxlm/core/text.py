"""Text from data (column names, levels, file names) made safe to show on a terminal."""
from __future__ import annotations


def printable(text) -> str:
    """``text`` safe to show on a terminal: each non-printable character (ANSI/OSC escapes such as
    ``"\\x1b]0;title\\x07"``, other control and format characters, line breaks) is written as its
    Python escape (``\\x1b``, ``\\n``); everything else, other alphabets included, is unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


__all__ = ["printable"]
