"""Screening of members' words: crisis language and medication changes. Pure: text in, verdict out.

The phrase lists are data, not code: plain text beside this module in ``phrases/``, which a
clinician can edit and translate without touching Python.

    crisis_<lang>.txt      words that may mean a member is in danger now
    medication_<lang>.txt  changing, stopping or skipping medication, or advising others to
    benign_<lang>.txt      everyday sayings that use crisis words ("this hill killed me");
                           a crisis or medication phrase that overlaps one does not count
    negation_<lang>.txt    cues that deny what follows ("I would never", "I'm not");
                           a phrase right after one, with only spaces between, does not count

Every file of every language is loaded, and every text is screened against all of them:
members may write in English, Spanish or both. A new language is a new set of files.

Phrase syntax, one phrase a line, its words in order:

    kill* myself            *  any ending: kill, kills, killed, killing
    kill|hurt myself        |  any one of these words
    want [to] die           [] an optional word, or an optional choice: [to|for]
    going_to|gonna die      _  joins words into one choice
    suicid~*                ~  also one slip of spelling: a letter missing, one too many, two
                               neighbours swapped, or a sound-alike (c/s/z/k/qu, b/v, i/y, g/j,
                               one vowel for another); only words of five letters or more
    swallow* ... pills      ... up to three other words
    @pills = pills|meds     a named choice, used as @pills (or [@pills]) in the lines below it
    # a note                everything after # is ignored

Compatibility forms (NFKC), case, accents (suicidio = suicídio) and apostrophes (don't = dont)
never matter: text and phrases are folded alike (see ``fold``). Nor do doubled or drawn-out letters
(kil = kill = kiiill), and any run of spaces or punctuation may sit between two words. Punctuation
still counts for negation: "I'm not suicidal" is set aside, "No, I want to die" is not. Before a *,
a ~ keeps the last letter: overdos~* would otherwise also take "overdo it".

Medication matches are only ever a gentle note; anything unsure leans towards crisis, because a
missed crisis costs more than a post that waits a few minutes for a coach.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

__all__ = ["PHRASES", "Phrase", "PhraseError", "Screener", "Verdict", "default_screener", "fold",
           "read_phrases", "screen"]

PHRASES = Path(__file__).resolve().with_name("phrases")
KINDS = ("crisis", "medication", "benign", "negation")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What screening found in one text, and which phrases found it (for moderators)."""

    crisis: bool
    medication: bool
    matches: tuple[str, ...] = ()  # "crisis_en: kill*|unalive* myself~|meself|my_self", crisis first


@dataclass(frozen=True, slots=True)
class Phrase:
    """One line of a phrase file, with its named choices filled in."""

    kind: str  # one of KINDS
    source: str  # "crisis_en.txt:27"
    label: str  # "crisis_en: want|wanna [to] die", as written
    pattern: str  # the line with @names replaced


class PhraseError(ValueError):
    """A phrase file or line that cannot be read; the message names the file and line."""


# --- folding: text and phrases in one spelling ----------------------------------------------

_APOSTROPHES = "'’ʼ‘`´＇"
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_DOUBLED = re.compile(r"([^\W\d_])\1+")


def fold(text: str) -> str:
    """Text without compatibility forms, case, accents or apostrophes: "Don’t" -> "dont"."""
    for apostrophe in _APOSTROPHES:
        text = text.replace(apostrophe, "")
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    # Only C-speed passes: screening sits in the path of every post. Doubled letters and the
    # runs of spaces and punctuation between words are left to the compiled phrases.
    return _MARKS.sub("", text)


# --- compiling phrases to regular expressions ----------------------------------------------
#
# A phrase compiles to a regular expression over folded text in which every letter may repeat
# (kil matches kill), any run of non-letters separates words, and a negation cue is separated
# from its phrase by spaces alone. A set of phrases compiles to one expression that starts at a
# separator and then branches on the next letter, two steps Python's engine takes quickly.

_SEPARATOR = r"[\W_]"
_BETWEEN_WORDS = _SEPARATOR + "+"
_SPACES_ONLY = r"[^\S\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+"
_WORD_CHAR = r"[^\W_]"
_GAP = 3  # how many words "..." stands for
_LETTER = r"[^\W\d_]"
_VOWELS = "aeiou"
_SOUND_ALIKES = (("qu", "k"), ("k", "qu"), ("c", "k"), ("k", "c"), ("c", "s"), ("s", "c"),
                 ("z", "s"), ("s", "z"), ("c", "z"), ("z", "c"), ("b", "v"), ("v", "b"),
                 ("i", "y"), ("y", "i"), ("g", "j"), ("j", "g"))
_WORD = re.compile(r"[^\W_]+")
_NAMED = re.compile(r"@(\w+)\s*=\s*(\S.*)")
_NAME_USE = re.compile(r"(?<![^\s|\[])@(\w+)(?![^\s|\]])")

_Spelling: TypeAlias = tuple[str, ...]  # letters and digits, or _LETTER for any one letter


@dataclass(frozen=True, slots=True)
class _Word:
    spellings: frozenset[_Spelling]
    any_ending: bool


@dataclass(frozen=True, slots=True)
class _Slot:
    kind: str  # "word", "optional" or "gap"
    options: tuple[tuple[_Word, ...], ...]  # each option a word or a word_sequence


def _single(word: str) -> str:
    return _DOUBLED.sub(r"\1", word)


def _slips(word: str, any_ending: bool) -> set[_Spelling]:
    """The word with one slip of spelling; the first letter stays, bar a sound-alike or a silent h.
    Before a * the last letter stays too: overdos* missing its s would be overdo*."""
    spellings: set[str] = set()
    for i in range(1, len(word) - any_ending):
        spellings.add(word[:i] + word[i + 1:])  # a letter missing
    for i in range(1, len(word) - 1):
        spellings.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])  # neighbours swapped
    if word.startswith("h"):
        spellings.add(word[1:])
    for written, heard in _SOUND_ALIKES:
        at = word.find(written)
        while at != -1:
            spellings.add(word[:at] + heard + word[at + len(written):])
            at = word.find(written, at + 1)
    for i, letter in enumerate(word):
        if letter in _VOWELS:
            spellings.update(word[:i] + vowel + word[i + 1:] for vowel in _VOWELS)
    slips = {tuple(_single(spelling)) for spelling in spellings if spelling}
    slips.update((*word[:i], _LETTER, *word[i:])  # one too many
                 for i in range(1, len(word) + 1 - any_ending))
    return slips


def _read_word(raw: str, where: str) -> _Word:
    stem = raw.rstrip("*~")
    flags = raw[len(stem):]
    folded = _single(fold(stem))
    if not stem or not _WORD.fullmatch(folded):
        raise PhraseError(f"{where}: {raw!r} is not a word; write letters, with * or ~ at the end, "
                          "and a space or _ between words")
    spellings = {tuple(folded)}
    if "~" in flags:
        if len(folded) < 5:
            raise PhraseError(f"{where}: ~ is for words of five letters or more, not {raw!r}")
        spellings |= _slips(folded, any_ending="*" in flags)
    return _Word(frozenset(spellings), any_ending="*" in flags)


def _read_slot(kind: str, text: str, where: str) -> _Slot:
    options = []
    for option in text.split("|"):
        words = option.split("_")
        if "" in words:
            raise PhraseError(f"{where}: an empty choice in {text!r}")
        options.append(tuple(_read_word(word, where) for word in words))
    return _Slot(kind, tuple(options))


def _read_phrase(text: str, where: str) -> tuple[_Slot, ...]:
    slots: list[_Slot] = []
    for part in text.split():
        if part == "...":
            slots.append(_Slot("gap", ()))
        elif part.startswith("[") and part.endswith("]") and "[" not in part[1:-1]:
            slots.append(_read_slot("optional", part[1:-1], where))
        elif "[" in part or "]" in part:
            raise PhraseError(f"{where}: [ ] holds one word or choice, with no spaces: [to|for]")
        else:
            slots.append(_read_slot("word", part, where))
    kinds = [slot.kind for slot in slots]
    if "word" not in kinds:
        raise PhraseError(f"{where}: a phrase needs a word outside [ ]")
    if "gap" in kinds[:kinds.index("word")] or kinds[-1] == "gap" or "gap gap" in " ".join(kinds):
        raise PhraseError(f"{where}: ... goes between two words")
    return tuple(slots)


def _atom(atom: str) -> str:
    if atom == _LETTER or atom.isdigit():
        return re.escape(atom) if atom.isdigit() else atom
    # A letter may be doubled or drawn out ("kiiill"). Written x, x* rather than x+: the engine
    # rules out a branch that starts with a plain letter by looking at one character.
    return f"{re.escape(atom)}{re.escape(atom)}*"


class _Trie:
    """Spellings that share their beginnings, and what may follow each complete one."""

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.then: dict[str, None] = {}  # an ordered set of expressions

    def add(self, spelling: _Spelling, then: str = "") -> None:
        node = self
        for atom in spelling:
            node = node.children.setdefault(atom, _Trie())
        node.then[then] = None

    def pattern(self) -> str:
        branches = [_atom(atom) + child.pattern()
                    for atom, child in sorted(self.children.items())]
        follows = [then for then in self.then if then]
        if follows:
            branches.append(follows[0] if len(follows) == 1 else f"(?:{'|'.join(follows)})")
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in self.then else body


def _slot_pattern(slot: _Slot, between: str) -> str:
    if slot.kind == "gap":
        return f"(?:{between}{_WORD_CHAR}+){{0,{_GAP}}}"
    single = _Trie()  # one-word choices share one trie: "stop|stops|stopped" tries s, t, o, p once
    options = []
    for words in slot.options:
        if len(words) == 1:
            for spelling in words[0].spellings:
                single.add(spelling, _WORD_CHAR + "*" if words[0].any_ending else "")
        else:
            options.append(between.join(_word_pattern(word) for word in words))
    if single.children:
        options.insert(0, single.pattern())
    return options[0] if len(options) == 1 else f"(?:{'|'.join(options)})"


def _word_pattern(word: _Word) -> str:
    trie = _Trie()
    for spelling in word.spellings:
        trie.add(spelling)
    return trie.pattern() + (_WORD_CHAR + "*" if word.any_ending else "")


def _phrase_pattern(slots: Sequence[_Slot], between: str) -> str:
    """A whole phrase as one expression."""
    first = [slot.kind for slot in slots].index("word")
    pattern = "".join(f"(?:{_slot_pattern(slot, between)}{between})?" for slot in slots[:first])
    pattern += _slot_pattern(slots[first], between)
    for slot in slots[first + 1:]:
        piece = _slot_pattern(slot, between)
        if slot.kind == "gap":
            pattern += piece
        elif slot.kind == "optional":
            pattern += f"(?:{between}{piece})?"
        else:
            pattern += between + piece
    return pattern


def _beginnings(slots: Sequence[_Slot]) -> Iterator[tuple[_Word, list[_Word] | None]]:
    """Each word a phrase can begin with, and the words that can come next (None: any, or none)."""
    for at, slot in enumerate(slots):
        for words in slot.options:
            yield words[0], [words[1]] if len(words) > 1 else _next_words(slots[at + 1:])
        if slot.kind == "word":
            return


def _next_words(slots: Sequence[_Slot]) -> list[_Word] | None:
    following: list[_Word] = []
    for slot in slots:
        if slot.kind == "gap":
            return None
        following.extend(words[0] for words in slot.options)
        if slot.kind == "word":
            return following
    return None  # the phrase may end here


class _Matcher:
    """Many phrases over " " + folded text. One quick expression finds where one may begin (a
    first word and the start of the next); then each phrase's own expression is tried there."""

    def __init__(self, phrases: Sequence[Phrase]) -> None:
        finder = _Trie()
        # Each phrase's own expression, by the first two letters it can begin with (None for the
        # second: any), so that at a start only a handful are tried, in file order.
        by_letter: dict[str, list[tuple[str, frozenset[str] | None, re.Pattern[str]]]] = {}
        for phrase in phrases:
            slots = _read_phrase(phrase.pattern, phrase.source)
            own = re.compile(f"(?:{_phrase_pattern(slots, _BETWEEN_WORDS)})(?!{_WORD_CHAR})")
            seconds: dict[str, set[str] | None] = {}
            for word, following in _beginnings(slots):
                if following is None:
                    then = f"(?!{_WORD_CHAR})"
                else:
                    next_words = _Trie()
                    for spelling in (s for w in following for s in w.spellings):
                        next_words.add(spelling[:3])  # enough to pass over most words
                    then = _BETWEEN_WORDS + next_words.pattern()
                then = (_WORD_CHAR + "*" if word.any_ending else "") + then
                for spelling in word.spellings:
                    finder.add(spelling, then)
                    known = seconds.setdefault(spelling[0], set())
                    second = spelling[1] if len(spelling) > 1 else None
                    if known is None or second is None or second == _LETTER:
                        seconds[spelling[0]] = None  # a one-letter word, a slip or an ending: any
                    else:
                        known.add(second)
            for letter, allowed in seconds.items():
                by_letter.setdefault(letter, []).append(
                    (phrase.label, None if allowed is None else frozenset(allowed), own))
        self.by_start: dict[tuple[str, str | None], list[tuple[str, re.Pattern[str]]]] = {}
        for letter, entries in by_letter.items():
            known = {second for _, allowed, _ in entries for second in allowed or ()}
            for second in (*known, None):
                self.by_start[letter, second] = [
                    (label, own) for label, allowed, own in entries
                    if allowed is None or second in allowed]
        # A separator, then a branch on each letter: two steps the engine takes quickly. Only
        # the separator is consumed, so one pass finds every start, even inside another match.
        self.regex = re.compile(f"{_SEPARATOR}(?={finder.pattern() or '(?!)'})")

    def at(self, padded: str, start: int) -> Iterator[tuple[str, int]]:
        """The phrases that match at a start, in file order, with where each ends."""
        letter = padded[start]
        second = padded[start + 1:start + 2]
        at = start + 1
        while second == letter:  # a doubled first letter: "kkill"
            at += 1
            second = padded[at:at + 1]
        entries = self.by_start.get((letter, second)) or self.by_start.get((letter, None)) or []
        for label, own in entries:
            if match := own.match(padded, start):
                yield label, match.end()


def read_phrases(path: Path) -> list[Phrase]:
    """The phrases of one file, named <kind>_<language>.txt."""
    kind = path.stem.split("_", 1)[0]
    if kind not in KINDS:
        raise PhraseError(f"{path.name}: a phrase file is named <kind>_<language>.txt, "
                          f"the kind one of {', '.join(KINDS)}")
    named: dict[str, str] = {}
    phrases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path.name}:{number}"
        if text.startswith("@") and "=" in text:
            definition = _NAMED.fullmatch(text)
            value = "".join(definition[2].split()) if definition else ""
            if not definition or any(mark in value for mark in "[]@") or "..." in value:
                raise PhraseError(f"{where}: a named choice reads @name = a|b|c_d")
            named[definition[1]] = value
            continue

        def fill(use: re.Match[str], where: str = where) -> str:
            if use[1] not in named:
                raise PhraseError(f"{where}: @{use[1]} is not defined above this line")
            return named[use[1]]

        pattern = _NAME_USE.sub(fill, text)
        if "@" in pattern:
            raise PhraseError(f"{where}: @name stands for a whole choice: @pills, [@pills], a|@pills")
        phrases.append(Phrase(kind=kind, source=where, label=f"{path.stem}: {text}", pattern=pattern))
    return phrases


# --- screening -------------------------------------------------------------------------

_NOTHING = Verdict(crisis=False, medication=False)
_LOOK_BACK = 80  # characters before a phrase searched for a negation cue or a saying


class _Sayings:
    """The benign sayings in one text, looked for only when a phrase needs them."""

    def __init__(self, benign: _Matcher, padded: str) -> None:
        self._benign = benign
        self._padded = padded
        self._starts: list[int] | None = None
        self._ends: dict[int, list[int]] = {}

    def overlap(self, start: int, end: int) -> bool:
        """Whether a saying overlaps the stretch from start to end."""
        if self._starts is None:
            self._starts = [match.end() for match in self._benign.regex.finditer(self._padded)]
        for at in self._starts[bisect.bisect_left(self._starts, start - _LOOK_BACK):]:
            if at >= end:
                return False
            if at not in self._ends:
                self._ends[at] = [stop for _, stop in self._benign.at(self._padded, at)]
            if any(stop > start for stop in self._ends[at]):
                return True
        return False


class Screener:
    """Phrase lists compiled once; screen any number of texts with them."""

    def __init__(self, phrases: Iterable[Phrase]) -> None:
        by_kind: dict[str, list[Phrase]] = {kind: [] for kind in KINDS}
        for phrase in phrases:
            by_kind[phrase.kind].append(phrase)
        if not by_kind["crisis"]:
            raise PhraseError("no crisis phrases: screening would let every crisis through")
        self._crisis = _Matcher(by_kind["crisis"])
        self._medication = _Matcher(by_kind["medication"])
        self._benign = _Matcher(by_kind["benign"])
        cues = [_phrase_pattern(_read_phrase(p.pattern, p.source), _SPACES_ONLY)
                for p in by_kind["negation"]]
        self._negation = re.compile(rf"{_SEPARATOR}(?:{'|'.join(cues) or '(?!)'}){_SPACES_ONLY}\Z")

    @classmethod
    def from_folder(cls, folder: Path) -> Screener:
        """Every <kind>_<language>.txt in a folder."""
        paths = sorted(path for kind in KINDS for path in folder.glob(f"{kind}_*.txt"))
        return cls(phrase for path in paths for phrase in read_phrases(path))

    def screen(self, text: str) -> Verdict:
        """Whether a text signals crisis or a medication change, and the phrases that said so."""
        padded = " " + fold(text)  # every phrase starts after a separator, the first one too
        sayings = _Sayings(self._benign, padded)
        found: dict[str, list[str]] = {"crisis": [], "medication": []}
        for kind, matcher in (("crisis", self._crisis), ("medication", self._medication)):
            after = 0  # the end of the last phrase found
            for match in matcher.regex.finditer(padded):
                start = match.end()
                if start < after:
                    continue
                for label, end in matcher.at(padded, start):
                    if self._negated(padded, start):
                        break
                    if not sayings.overlap(start, end):
                        if label not in found[kind]:
                            found[kind].append(label)
                        after = end
                        break
        if not found["crisis"] and not found["medication"]:
            return _NOTHING
        return Verdict(crisis=bool(found["crisis"]), medication=bool(found["medication"]),
                       matches=(*found["crisis"], *found["medication"]))

    def _negated(self, padded: str, start: int) -> bool:
        """Whether a negation cue ends just before the phrase, with only spaces between."""
        return self._negation.search(padded, max(0, start - _LOOK_BACK), start) is not None


@functools.cache
def default_screener() -> Screener:
    """The screener for the phrase files shipped beside this module, compiled once."""
    return Screener.from_folder(PHRASES)


def screen(text: str) -> Verdict:
    """Screen a post or comment with the shipped phrase lists."""
    return default_screener().screen(text)
