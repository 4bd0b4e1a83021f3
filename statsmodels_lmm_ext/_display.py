"""Tables that print what a statistician needs to read them: a title above, notes below.

:class:`NotedFrame` is a :class:`pandas.DataFrame` whose ``attrs["title"]`` is printed above
the table and whose ``attrs["notes"]`` (a list of lines) below it, as R's emmeans and SAS print
their tables; ``attrs["index"] = False`` leaves out a row index that carries no information.
Frames derived from one (slices, sorted or assigned copies) keep the class and, as pandas
propagates ``attrs``, the title and notes.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["NotedFrame", "with_notes"]


def with_notes(body: str, title: str | None, notes) -> str:
    """``body`` with ``title`` on the line above and the ``notes`` lines below a blank line."""
    out = f"{title}\n{body}" if title else body
    notes = [n for n in (notes or []) if n]
    return out + "\n\n" + "\n".join(notes) if notes else out


class NotedFrame(pd.DataFrame):
    """A DataFrame printed with its title (``attrs["title"]``) and notes (``attrs["notes"]``)."""

    @property
    def _constructor(self):
        return type(self)

    def __repr__(self) -> str:
        if self.attrs.get("index", True) or self.empty:
            body = super().__repr__()
        else:
            body = self.to_string(index=False)
        return with_notes(body, self.attrs.get("title"), self.attrs.get("notes"))
