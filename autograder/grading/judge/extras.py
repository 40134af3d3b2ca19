"""What the judge's child makes for the feedback page beside the checks: figures and texts.

They are the plugin's, rendered where the models and the hidden data already are,
and come back as data, capped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.core.course import Judged
from autograder.core.results import Judgement
from autograder.core.text import student_text

if TYPE_CHECKING:
    from autograder.core.plugin import Plugin


#: A figure's PNG data URL may take this much; a larger one is left out, with a note.
FIGURE_CHARS = 400_000
MAX_FIGURES = 8
#: A text (a sample) is cut to this many characters, and at most MAX_TEXTS are kept.
TEXT_CHARS = 2000
MAX_TEXTS = 12
PNG_URL = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+={0,2}")


def feedback_extras(plugin: Plugin, judged_dir: Path) -> Judgement:
    """The plugin's figures and texts for the page of ``judged_dir`` (no checks), capped.

    A figure must be a PNG data URL of at most :data:`FIGURE_CHARS` characters, else it
    is left out with a note; each text is cut to :data:`TEXT_CHARS`. A plugin that
    fails to make them costs the student nothing: the page just has none.
    """

    notes, figures, texts = [], {}, {}
    try:
        made = plugin.feedback_figures(Judged(judged_dir))
    except Exception as err:
        made, notes = {}, [f"the judge's figures could not be drawn ({type(err).__name__})"]
    for title, url in list(made.items())[:MAX_FIGURES]:
        title = student_text(title, limit=200)
        if isinstance(url, str) and len(url) > FIGURE_CHARS:
            notes.append(
                f"figure '{title}' left out: its image takes {len(url) // 1000} kB, over the "
                f"page's cap of {FIGURE_CHARS // 1000} kB per figure"
            )
        elif not isinstance(url, str) or not PNG_URL.fullmatch(url):
            notes.append(f"figure '{title}' left out: it is not a PNG image")
        else:
            figures[title] = url
    try:
        written = plugin.feedback_texts(Judged(judged_dir))
    except Exception as err:
        written, notes = {}, [*notes, f"the judge's texts could not be made ({type(err).__name__})"]
    for title, text in list(written.items())[:MAX_TEXTS]:
        text = str(text)
        cut = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
        texts[student_text(title, limit=200)] = cut
    return Judgement([], figures, texts, notes)
