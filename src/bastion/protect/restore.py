"""Put the original values back where the answer has placeholders: in whole texts, inside JSON strings (tool-call
arguments) and in streams that split a placeholder across any number of deltas at any offset.

What a model does to placeholders is tolerated: any case inside brackets (``[person_1]``), up to two spaces or
tabs inside them (``[ PERSON_1 ]``), no brackets (``PERSON_1`` as an upper-case whole word). Only names the vault
holds are restored: ``[PERSON_9]`` it never handed out, and a name it retired because the caller's own text had
it (see ``tokenize``), stay as they are.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bastion.protect.tokenize import Vault

_SPACES = ("", " ", "  ")
# Where a placeholder may begin: a bracket, or an upper-case letter that starts a word.
_START = re.compile(r"\[|(?<![A-Za-z0-9_])[A-Z]", re.ASCII)
_MAY_START = re.compile(r"[\[A-Z]")


def _json_escaped(value: str) -> str:
    """``value`` as it must appear between the quotes of a JSON string."""
    return orjson.dumps(value).decode()[1:-1]


class _Matcher:
    """The vault's placeholders compiled: a pattern, what each name becomes, and (for streams, built on first
    use) every unfinished form."""

    def __init__(self, pattern: re.Pattern[str], values: Mapping[str, str], names: Sequence[str]) -> None:
        self.pattern = pattern
        self.values = values
        self._names = names

    @classmethod
    def of(cls, vault: Vault, *, json_string: bool = False) -> _Matcher | None:
        """``None`` for an empty vault: there is nothing to restore."""
        mapping = vault.mapping()
        if not mapping:
            return None
        names = sorted(mapping, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, names))
        pattern = re.compile(
            rf"\[[ \t]{{0,2}}(?i:({alternatives}))[ \t]{{0,2}}\]|(?<![A-Za-z0-9_])({alternatives})(?![A-Za-z0-9_])",
            re.ASCII,
        )
        values = {name: _json_escaped(value) if json_string else value for name, value in mapping.items()}
        return cls(pattern, values, names)

    @functools.cached_property
    def _forms(self) -> list[str]:
        return [f"[{before}{name}{after}]" for name in self._names for before in _SPACES for after in _SPACES]

    @functools.cached_property
    def brackets(self) -> frozenset[str]:
        """Proper prefixes of each bracketed form, upper-cased, spaces for tabs."""
        return frozenset(form[:cut] for form in self._forms for cut in range(1, len(form)))

    @functools.cached_property
    def bare(self) -> frozenset[str]:
        """Prefixes of each bare name, the whole name included (its end is still open)."""
        return frozenset(name[:cut] for name in self._names for cut in range(1, len(name) + 1))

    @functools.cached_property
    def reach(self) -> int:
        """The longest bracketed form."""
        return max(map(len, self._forms))

    def value(self, match: re.Match[str]) -> str:
        """What a matched placeholder becomes (its name is canonical once upper-cased)."""
        return self.values[(match.group(1) or match.group(2)).upper()]

    def hold_from(self, text: str, position: int) -> int:
        """The earliest index from ``position`` on where a placeholder may begin that more text could still make
        or unmake; ``len(text)`` when there is none. Everything before it is decided."""
        for match in _START.finditer(text, max(position, len(text) - self.reach)):
            tail = text[match.start() :]
            if tail in self.bare or tail.upper().replace("\t", " ") in self.brackets:
                return match.start()
        return len(text)

    def replace(self, text: str, position: int, end: int) -> tuple[str, int]:
        """``text[position:end]`` restored, and where it stopped: before ``end`` if a match would run past it.

        Matching starts at ``position`` but sees the characters before it, as a word boundary must.
        """
        parts: list[str] = []
        for match in self.pattern.finditer(text, position):
            if match.start() >= end:
                break
            if match.end() > end:
                end = match.start()
                break
            parts += (text[position : match.start()], self.value(match))
            position = match.end()
        parts.append(text[position:end])
        return "".join(parts), end


def restore(text: str, vault: Vault) -> str:
    """``text`` with every placeholder the vault holds replaced by its original value."""
    matcher = _Matcher.of(vault)
    return text if matcher is None else matcher.pattern.sub(matcher.value, text)


def restore_json_string(text: str, vault: Vault) -> str:
    """Like ``restore`` for text inside a JSON string (tool-call ``arguments``): values are JSON-escaped, so the
    arguments stay valid JSON whatever quotes or backslashes the originals hold."""
    matcher = _Matcher.of(vault, json_string=True)
    return text if matcher is None else matcher.pattern.sub(matcher.value, text)


class StreamRestorer:
    """``restore`` over a text that arrives in pieces: ``feed`` each delta, then ``flush`` once at the end.

    ``feed`` returns what is decided and holds back only a suffix that could still become a placeholder: fewer
    characters than the longest bracketed form (longest name + two brackets + four spaces). Whatever the split,
    the pieces it returns, joined, are exactly ``restore`` of the whole text.
    """

    def __init__(self, vault: Vault, *, json_string: bool = False) -> None:
        self._matcher = _Matcher.of(vault, json_string=json_string)
        self._buffer = ""
        self._position = 0  # where the undecided text starts in the buffer; one character before it is kept

    @property
    def bound(self) -> int:
        """The most characters ``feed`` ever holds back."""
        return 0 if self._matcher is None else self._matcher.reach - 1

    @property
    def held(self) -> int:
        """How many characters are held back now."""
        return len(self._buffer) - self._position

    def feed(self, delta: str) -> str:
        """The restored text that ``delta`` completes (possibly empty)."""
        matcher = self._matcher
        if matcher is None:
            return delta
        if self.held == 0 and delta and _MAY_START.search(delta) is None:
            self._buffer, self._position = delta[-1], 1  # nothing can begin in it: it all goes
            return delta
        text = self._buffer + delta
        out, end = matcher.replace(text, self._position, matcher.hold_from(text, self._position))
        # Keep one decided character: it says whether a bare name that starts next starts a word.
        self._buffer, self._position = (text[end - 1 :], 1) if end else (text, 0)
        return out

    def flush(self) -> str:
        """The rest, restored as the end of the text; the restorer is then ready for a new text."""
        if self._matcher is None:
            return ""
        out, _ = self._matcher.replace(self._buffer, self._position, len(self._buffer))
        self._buffer, self._position = "", 0
        return out
