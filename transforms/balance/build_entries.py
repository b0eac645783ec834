"""Build an entry list from a caption file, in the way of MetaCLIP's Wikipedia n-grams.

MetaCLIP's list holds WordNet synsets, Wikipedia titles, and the unigrams and
bigrams frequent in Wikipedia. This builds the last two kinds from captions:
words (runs of word characters) and pairs of adjacent words, each kept when
it occurs in at least ``--min-unigram`` / ``--min-bigram`` captions and is
not a function word (a bigram may hold none). The shipped list
(``data/cc3m_concepts.txt``) was made by

    python -m paircurate.transforms.balance.build_entries \\
        cc3m_val_captions.tsv transforms/balance/data/cc3m_concepts.txt

from the Conceptual Captions validation split (its first column holds the
caption).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable

from paircurate.transforms.balance.entries import normalize_entry

FUNCTION_WORDS = frozenset(
    "a an the and or but nor of in on at to for from by with without about above below over "
    "under into onto out off up down as is are was were be been being am do does did has have "
    "had having this that these those it its it's they them their there here he she him her his "
    "we us our you your i me my mine who whom whose which what when where why how all any both "
    "each few more most other some such no not only own same so than too very can will just "
    "should now s t while during before after again further then once if because until against "
    "between through".split()
)
_WORD = re.compile(r"\w+")


def words_of(caption: str) -> list[str]:
    return _WORD.findall(normalize_entry(caption))


def count_ngrams(captions: Iterable[str]) -> tuple[Counter, Counter]:
    """(captions per unigram, captions per bigram), each n-gram counted once per caption."""
    unigrams, bigrams = Counter(), Counter()
    for caption in captions:
        words = words_of(caption)
        unigrams.update({word for word in words if not word.isdigit()})
        bigrams.update({f"{a} {b}" for a, b in zip(words, words[1:], strict=False)})
    return unigrams, bigrams


def select_entries(unigrams: Counter, bigrams: Counter, min_unigram: int, min_bigram: int):
    """The entries, most frequent first, ties alphabetical."""
    chosen = Counter()
    for word, count in unigrams.items():
        if count >= min_unigram and word not in FUNCTION_WORDS and len(word) > 1:
            chosen[word] = count
    for pair, count in bigrams.items():
        first, second = pair.split(" ")
        if count >= min_bigram and not {first, second} & FUNCTION_WORDS:
            chosen[pair] = count
    return sorted(chosen, key=lambda entry: (-chosen[entry], entry))


HEADER = """\
# Concept entries for --balance-entries builtin:cc3m: unigrams and bigrams of
# Google's Conceptual Captions (CC3M) validation captions, built by
# paircurate.transforms.balance.build_entries. Source: Conceptual Captions,
# Google LLC; its licence lets the data be freely used for any purpose.
# One entry per line, most frequent first.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captions", help="a TSV or text file with the caption in its first column")
    parser.add_argument("output", help="the entry list to write")
    parser.add_argument("--min-unigram", type=int, default=3)
    parser.add_argument("--min-bigram", type=int, default=5)
    args = parser.parse_args(argv)
    with open(args.captions, encoding="utf-8") as lines:
        captions = [line.split("\t", 1)[0] for line in lines]
    entries = select_entries(*count_ngrams(captions), args.min_unigram, args.min_bigram)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(HEADER)
        out.writelines(entry + "\n" for entry in entries)


if __name__ == "__main__":
    main()
