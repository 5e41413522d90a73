"""Application Entity title rules (PS3.5 6.2, VR AE)."""

from __future__ import annotations


class AETitleError(ValueError):
    """Not a usable AE title."""


def check_ae_title(raw: str) -> str:
    """Return the AE title without surrounding spaces, or raise AETitleError.

    An AE title is 1 to 16 characters of the default repertoire, not all
    spaces, with no backslash and no control characters.
    """
    title = raw.strip(" ")
    if not title:
        raise AETitleError("an AE title must not be empty")
    if len(title) > 16:
        raise AETitleError(f"AE title {title!r} is longer than 16 characters")
    if "\\" in title or any(ord(c) < 32 or ord(c) > 126 for c in title):
        raise AETitleError(f"AE title {title!r} has a backslash, control or non-ASCII character")
    return title
