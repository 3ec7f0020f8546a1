"""How strong a configured operator key is (DRGWATCH_API_KEYS), before production starts.

Operator keys act as admin and are chosen by people, so a typed word or a pattern must
not pass. The rule: at least `MIN_LENGTH` characters, no placeholder word, and an
estimated entropy of at least `MIN_BITS` bits, where

    estimate = effective length x log2(alphabet)

- the alphabet is what the key's characters look drawn from: 16 when all are hex
  digits, else 10 for digits, 26 for each letter case present, plus one per distinct
  other character (so base64url counts 64, not the 95 printable characters);
- the effective length counts, left to right, a stretch of 4 or more characters that
  repeats an earlier stretch, or runs through consecutive characters (`aaaa`, `abcd`,
  `9876`), as a single character.

A key made as the README says (`secrets.token_urlsafe(32)`, 43 characters, or
`openssl rand -hex 32`, 64) estimates at 250 bits or more; 32 hex characters carry
exactly 128 bits and fail whenever a repeat shortens them, so ask for more.
"""

from __future__ import annotations

import math
import string

MIN_LENGTH = 32
MIN_BITS = 128.0
PATTERN_LENGTH = 4
# the estimate looks at this much of a key (the repeat search is quadratic per character)
ESTIMATED_PREFIX = 256
PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "password",
    "passw0rd",
    "secret",
    "default",
    "drgwatch",
    "example",
    "placeholder",
    "replace",
    "qwerty",
    "letmein",
    "apikey",
    "api-key",
)
HEX_DIGITS = frozenset(string.hexdigits)


def alphabet_size(key: str) -> int:
    """How many characters the key looks drawn from (see the module docstring)."""
    characters = set(key)
    if characters <= set(string.digits):
        return 10
    if characters <= HEX_DIGITS and not (characters & set("abcdef") and characters & set("ABCDEF")):
        return 16
    size = 0
    if characters & set(string.digits):
        size += 10
    if characters & set(string.ascii_lowercase):
        size += 26
    if characters & set(string.ascii_uppercase):
        size += 26
    size += len(characters - set(string.ascii_letters + string.digits))
    return max(size, 1)


def effective_length(key: str) -> int:
    """Characters, with each repeat of an earlier stretch or run of consecutive ones as one."""
    count = 0
    position = 0
    while position < len(key):
        span = max(_repeat_at(key, position), _run_at(key, position))
        position += span if span >= PATTERN_LENGTH else 1
        count += 1
    return count


def _repeat_at(key: str, position: int) -> int:
    """Length of the longest stretch at `position` that also starts earlier (may overlap)."""
    longest = 0
    for start in range(position):
        length = 0
        while position + length < len(key) and key[start + length] == key[position + length]:
            length += 1
        longest = max(longest, length)
    return longest


def _run_at(key: str, position: int) -> int:
    """Length of the run at `position` whose characters step by -1, 0 or +1."""
    if position + 1 >= len(key):
        return 1
    step = ord(key[position + 1]) - ord(key[position])
    if step not in (-1, 0, 1):
        return 1
    length = 2
    while (
        position + length < len(key)
        and ord(key[position + length]) - ord(key[position + length - 1]) == step
    ):
        length += 1
    return length


def estimated_bits(key: str) -> float:
    head = key[:ESTIMATED_PREFIX]
    return effective_length(head) * math.log2(alphabet_size(head))


def weakness(key: str) -> str | None:
    """Why the key is too weak to act as admin, or None when it is strong enough."""
    if len(key) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    lowered = key.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"contains the placeholder word {word!r}"
    bits = estimated_bits(key)
    if bits < MIN_BITS:
        return f"estimated at {bits:.0f} bits of entropy, fewer than {MIN_BITS:.0f}"
    return None
