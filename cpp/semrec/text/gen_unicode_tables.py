"""Generate the BERT normaliser's Unicode table (run by CMake; output goes to the build dir).

Each codepoint gets flags that reproduce the Hugging Face BERT normaliser and pre-tokeniser:
removed (controls Cc/Cf/Co, surrogates, U+0000, U+FFFD), whitespace (becomes a
space), CJK ideograph (isolated by spaces), punctuation (a word boundary), and, when it is not
itself, its replacement text lower(strip_Mn(NFD(c))). Runs of codepoints sharing the same flags
and no replacement are merged into one range, so the table stays small.

The model was trained with the Hugging Face tokenizer's behaviour, so that is what the table
reproduces, also where it departs from the Unicode of Python's ``unicodedata`` (14.0 in CPython
3.11): its character categories come from an older Unicode (characters assigned since are
plain letters to it: not punctuation, not stripped as accents, not removed), its lowercase
mapping from a newer one, and its CJK ranges start extension E at U+2B920. The differences
below were measured by running every codepoint through ``tokenizers`` (0.22) and this table;
``tests/test_text_tokenizer.py`` repeats that comparison on every codepoint.
"""

import sys
import unicodedata

# char::is_whitespace in Rust (White_Space) minus the controls, which are removed first.
WHITESPACE = {0x20, 0x09, 0x0A, 0x0D, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
WHITESPACE |= set(range(0x2000, 0x200B))
CJK = [
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
]  # fmt: skip
REMOVE, SPACE, CJK_FLAG, PUNCT, MAPPED = 1, 2, 4, 8, 16

# Characters the Hugging Face tokenizer's category table does not know (assigned in Unicode
# after it): plain letters there. Inclusive ranges.
HF_UNCATEGORISED = [
    (0x061D, 0x061D), (0x07FD, 0x07FD), (0x0890, 0x0891), (0x0898, 0x089F), (0x08CA, 0x08E2),
    (0x09FD, 0x09FE), (0x0A76, 0x0A76), (0x0AFA, 0x0AFF), (0x0B55, 0x0B55), (0x0C04, 0x0C04),
    (0x0C3C, 0x0C3C), (0x0C77, 0x0C77), (0x0C84, 0x0C84), (0x0D00, 0x0D00), (0x0D3B, 0x0D3C),
    (0x0D81, 0x0D81), (0x0EBA, 0x0EBA), (0x180F, 0x180F), (0x1885, 0x1886), (0x1ABF, 0x1ACE),
    (0x1B7D, 0x1B7E), (0x1DF6, 0x1DFB), (0x2E43, 0x2E4F), (0x2E52, 0x2E5D), (0xA82C, 0xA82C),
    (0xA8C5, 0xA8C5), (0xA8FF, 0xA8FF), (0xA9BD, 0xA9BD), (0x10D24, 0x10D27),
    (0x10EAB, 0x10EAD), (0x10F46, 0x10F50), (0x10F55, 0x10F59), (0x10F82, 0x10F89),
    (0x11070, 0x11070), (0x11073, 0x11074), (0x110C2, 0x110C2), (0x110CD, 0x110CD),
    (0x111CF, 0x111CF), (0x1123E, 0x1123E), (0x1133B, 0x1133B), (0x11438, 0x1143F),
    (0x11442, 0x11444), (0x11446, 0x11446), (0x1144B, 0x1144F), (0x1145A, 0x1145B),
    (0x1145D, 0x1145E), (0x11660, 0x1166C), (0x116B9, 0x116B9), (0x1182F, 0x11837),
    (0x11839, 0x1183B), (0x11938, 0x11938), (0x1193B, 0x1193C), (0x1193E, 0x1193E),
    (0x11943, 0x11946), (0x119D4, 0x119D7), (0x119DA, 0x119DB), (0x119E0, 0x119E0),
    (0x119E2, 0x119E2), (0x11A01, 0x11A0A), (0x11A33, 0x11A38), (0x11A3B, 0x11A47),
    (0x11A51, 0x11A56), (0x11A59, 0x11A5B), (0x11A8A, 0x11A96), (0x11A98, 0x11A9C),
    (0x11A9E, 0x11AA2), (0x11C30, 0x11C36), (0x11C38, 0x11C3D), (0x11C3F, 0x11C3F),
    (0x11C41, 0x11C45), (0x11C70, 0x11C71), (0x11C92, 0x11CA7), (0x11CAA, 0x11CB0),
    (0x11CB2, 0x11CB3), (0x11CB5, 0x11CB6), (0x11D31, 0x11D36), (0x11D3A, 0x11D3A),
    (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45), (0x11D47, 0x11D47), (0x11D90, 0x11D91),
    (0x11D95, 0x11D95), (0x11D97, 0x11D97), (0x11EF3, 0x11EF4), (0x11EF7, 0x11EF8),
    (0x11FFF, 0x11FFF), (0x12FF1, 0x12FF2), (0x13430, 0x13438), (0x16E97, 0x16E9A),
    (0x16F4F, 0x16F4F), (0x16FE2, 0x16FE2), (0x16FE4, 0x16FE4), (0x1CF00, 0x1CF2D),
    (0x1CF30, 0x1CF46), (0x1E000, 0x1E006), (0x1E008, 0x1E018), (0x1E01B, 0x1E021),
    (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE),
    (0x1E2EC, 0x1E2EF), (0x1E944, 0x1E94A), (0x1E95E, 0x1E95F),
]  # fmt: skip
# Re-categorised since that table: punctuation there (So and Mn today), and an accent there
# (Mc today: stripped).
HF_PUNCTUATION = {0x166D, 0x111C9}
HF_ACCENT = {0x1734}
# Its lowercase mapping knows letters Unicode 14.0 does not: (first, last, first lowercase).
HF_LOWERCASE = [
    (0x1C89, 0x1C89, 0x1C8A), (0xA7CB, 0xA7CB, 0x0264), (0xA7CC, 0xA7CC, 0xA7CD),
    (0xA7CE, 0xA7CE, 0xA7CF), (0xA7D2, 0xA7D2, 0xA7D3), (0xA7D4, 0xA7D4, 0xA7D5),
    (0xA7DA, 0xA7DA, 0xA7DB), (0xA7DC, 0xA7DC, 0x019B), (0x10D50, 0x10D65, 0x10D70),
    (0x16EA0, 0x16EB8, 0x16EBB),
]  # fmt: skip


def _in_ranges(cp: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def flags_of(cp: int) -> tuple[int, str | None]:
    c = chr(cp)
    cat = unicodedata.category(c)
    if cp in (0x09, 0x0A, 0x0D) or cp in WHITESPACE:
        return SPACE, None
    for lo, hi, lower in HF_LOWERCASE:
        if lo <= cp <= hi:
            return MAPPED, chr(lower + cp - lo)
    if _in_ranges(cp, HF_UNCATEGORISED):
        return 0, None
    if cp in HF_ACCENT:
        return MAPPED, ""
    if cp in HF_PUNCTUATION:
        return PUNCT, None
    if cp == 0 or cp == 0xFFFD or cat in ("Cc", "Cf", "Co", "Cs"):
        return REMOVE, None
    flags = 0
    if _in_ranges(cp, CJK):
        flags |= CJK_FLAG
    if (cp < 128 and not c.isalnum() and 33 <= cp <= 126) or cat.startswith("P"):
        flags |= PUNCT
    nfd = unicodedata.normalize("NFD", c)
    mapped = "".join(ch for ch in nfd if unicodedata.category(ch) != "Mn").lower()
    if mapped != c:
        return flags | MAPPED, mapped
    return flags, None


def main(out_path: str) -> None:
    ranges = []  # (start, flags, mapped)
    for cp in range(0x110000):
        flags, mapped = flags_of(cp)
        if mapped is None and ranges and ranges[-1][1] == flags and ranges[-1][2] is None:
            continue
        ranges.append((cp, flags, mapped))
    pool: list[int] = []
    lines = []
    for start, flags, mapped in ranges:
        offset, length = len(pool), 0
        if mapped is not None:
            pool.extend(ord(ch) for ch in mapped)
            length = len(mapped)
        lines.append(f"{{0x{start:X},{flags},{offset},{length}}},")
    with open(out_path, "w", encoding="ascii") as out:
        out.write(f"// Generated by gen_unicode_tables.py (Unicode {unicodedata.unidata_version}).\n")
        out.write("constexpr UnicodeRange kUnicodeRanges[] = {\n")
        out.write("\n".join(lines))
        out.write("\n};\nconstexpr char32_t kUnicodePool[] = {\n")
        out.write(",".join(str(v) for v in pool) or "0")
        out.write("\n};\n")


if __name__ == "__main__":
    main(sys.argv[1])
