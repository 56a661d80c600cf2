"""A veto on semantic hits whose texts differ where embeddings are known to be blind.

Sentence embeddings score a question and its negation as near-identical: all-MiniLM-L6-v2 puts
"Is Python a compiled language?" and "Is Python not a compiled language?" at 0.97, above the
0.95 threshold (GPTCache #694 reports the same). They also blur numbers ("2+2" vs "2+3") and
antonyms ("ascending" vs "descending", 0.95). So a hit is refused when the two texts differ in
negation words, in numbers, or by the two halves of an antonym pair. It costs a regex pass over
two short texts, and a refused hit is only a miss: the safe direction.
"""

from __future__ import annotations

import re
from collections import Counter

_APOSTROPHE = "\u2019"  # the typographic one, as pasted from documents
_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")

NEGATIONS = frozenset(
    {
        "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without",
        "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
        "wouldnt", "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "mustnt", "neednt", "except",
        "unless", "exclude", "excluding",
    }
)  # fmt: skip

ANTONYMS: tuple[tuple[str, str], ...] = (
    ("true", "false"), ("yes", "no"), ("ascending", "descending"), ("increase", "decrease"),
    ("increasing", "decreasing"), ("more", "less"), ("more", "fewer"), ("most", "least"),
    ("max", "min"), ("maximum", "minimum"), ("largest", "smallest"), ("biggest", "smallest"),
    ("highest", "lowest"), ("best", "worst"), ("first", "last"), ("before", "after"),
    ("above", "below"), ("over", "under"), ("enable", "disable"), ("enabled", "disabled"),
    ("add", "remove"), ("open", "close"), ("start", "stop"), ("encrypt", "decrypt"),
    ("encode", "decode"), ("serialize", "deserialize"), ("compress", "decompress"), ("up", "down"),
    ("left", "right"), ("input", "output"), ("import", "export"), ("upload", "download"),
    ("push", "pull"), ("inner", "outer"), ("sync", "async"), ("synchronous", "asynchronous"),
    ("mutable", "immutable"), ("valid", "invalid"), ("safe", "unsafe"), ("legal", "illegal"),
    ("possible", "impossible"), ("always", "never"), ("all", "none"), ("with", "without"),
    ("include", "exclude"), ("allow", "deny"), ("accept", "reject"), ("win", "lose"),
    ("buy", "sell"), ("long", "short"), ("hot", "cold"), ("fast", "slow"), ("old", "new"),
    ("positive", "negative"), ("plus", "minus"), ("pros", "cons"), ("advantages", "disadvantages"),
    ("compiled", "interpreted"), ("lower", "upper"), ("lowercase", "uppercase"),
)  # fmt: skip


def _words(text: str) -> list[str]:
    return [w.replace("'", "").replace(_APOSTROPHE, "") for w in _WORD.findall(text.lower())]


def differs_in_meaning(a: str, b: str) -> str | None:
    """Why two near-identical texts may still mean different things, or None."""
    words_a, words_b = _words(a), _words(b)
    if Counter(w for w in words_a if w in NEGATIONS) != Counter(w for w in words_b if w in NEGATIONS):
        return "negation"
    if [w for w in words_a if any(c.isdigit() for c in w)] != [
        w for w in words_b if any(c.isdigit() for c in w)
    ]:
        return "numbers"
    only_a, only_b = set(words_a) - set(words_b), set(words_b) - set(words_a)
    for x, y in ANTONYMS:
        if (x in only_a and y in only_b) or (y in only_a and x in only_b):
            return f"antonyms {x}/{y}"
    return None
