"""Which encoding a text file is in, or a refusal that says how to name it.

Byte-order marks first; UTF-16 without a BOM (its line breaks and the
characters it decodes to); UTF-8 when the bytes are valid UTF-8. Otherwise
the file is in one of the single-byte code pages labs save from Excel and
older tools (Windows-1250/1251/1252/1253/1254/1257, ISO-8859-2/7/15, KOI8-R,
KOI8-U, Mac Roman, DOS 866). Most byte strings decode in all of them, so each
candidate's text is judged as words: non-ASCII symbols inside words
("¿ó³w"), words mixing scripts or with a capital after small letters, Greek
and Cyrillic words without a vowel, and letters outside the alphabet of every
language that writes the script ("ÿáëîêî" has letters of no one language).
One candidate must read clearly better than every other that gives another
text; the items' language (when not English) breaks a tie between candidates
that both read as plausible words. Otherwise the file is refused, naming the
candidates and --encoding: a wrong guess would store garbled items without a
word.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

# single-byte candidates, most common first (the order only names them in messages)
CODE_PAGES = (
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1257",
    "iso8859_2",
    "iso8859_15",
    "iso8859_7",
    "koi8_r",
    "koi8_u",
    "mac_roman",
    "cp866",
)
NAMES = {
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)",
    "iso8859_2": "ISO-8859-2 (Central European)",
    "iso8859_15": "ISO-8859-15 (Western European)",
    "iso8859_7": "ISO-8859-7 (Greek)",
    "koi8_r": "KOI8-R (Russian)",
    "koi8_u": "KOI8-U (Ukrainian)",
    "mac_roman": "Mac Roman",
    "cp866": "DOS 866 (Cyrillic)",
    "utf-16-le": "UTF-16 little-endian",
    "utf-16-be": "UTF-16 big-endian",
    "utf-8": "UTF-8",
}

# non-ASCII letters of the languages written in each script (lower case; upper case follows)
_LATIN = {
    "fr": "àâæçéèêëîïôœùûüÿ",
    "de": "äöüß",
    "es": "áéíóúñüºª",
    "pt": "áâãàçéêíóôõúºª",
    "it": "àèéìíîòóùúºª",
    "ca": "àçèéíïòóúü·ºª",
    "nl": "áäéëèïóöüúíò",
    "da": "æøåéóá",
    "no": "æøåéèóôòü",
    "sv": "åäöéü",
    "fi": "äöåšž",
    "is": "áðéíóúýþæö",
    "pl": "ąćęłńóśźż",
    "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž",
    "hu": "áéíóöőúüű",
    "sl": "čšžćđ",
    "hr": "čćđšž",
    "ro": "ăâîșțşţ",
    "tr": "çğıöşüâîûİ",
    "lt": "ąčęėįšųūž",
    "lv": "āčēģīķļņšūž",
    "et": "äõöüšž",
    "sq": "çë",
    "eo": "ĉĝĥĵŝŭ",
    "ga": "áéíóú",
    "mt": "ċġħż",
}
_CYRILLIC = {
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
    "be": "абвгдеёжзійклмнопрстуўфхцчшыьэюя",
    "bg": "абвгдежзийклмнопрстуфхцчшщъьюя",
    "sr": "абвгдђежзијклљмнњопрстћуфхцчџш",
    "mk": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
}
_GREEK = {"el": "αβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰ"}
_SCRIPTS = {"latin": _LATIN, "cyrillic": _CYRILLIC, "greek": _GREEK}
_VOWELS = {"cyrillic": set("аеёиоуыэюяіїєў"), "greek": set("αεηιουωάέήίόύώϊϋΐΰ")}
# between letters, these are apostrophes or a Catalan middle dot; at a word's edge, quotes and the like
_INNER_OK = set("\u2019\u02bc\u2018\u00b4\u00b7\u2032")
_EDGE_OK = set("«»„“”‚‘’‹›¿¡…–—•°§©®™")
_ALONE_OK = set("€£¥¢\u00a0\u00b7")
# how much worse than the best reading every other must read: 1 (one implausible letter or word) keeps
# refusals of single-language files rare; files mixing two accented languages in a few words can still
# be misread (the import summary names the code page used)
MARGIN = 1
# a token: letters (ASCII or not) around at least one non-ASCII byte
_TOKEN = re.compile(rb"[A-Za-z\x80-\xff]*[\x80-\xff][A-Za-z\x80-\xff]*")


def _alphabet(letters: str) -> frozenset[str]:
    return frozenset(letters) | frozenset(c.upper() for c in letters if len(c.upper()) == 1)


_ALPHABETS = {script: {lang: _alphabet(a) for lang, a in langs.items()} for script, langs in _SCRIPTS.items()}
_SINGLES = {script: list(a.values()) for script, a in _ALPHABETS.items()}
_PAIRS = {script: [a | b for i, a in enumerate(s) for b in s[i + 1 :]] for script, s in _SINGLES.items()}
_LANGUAGE_SCRIPT = {lang: script for script, langs in _SCRIPTS.items() for lang in langs}


def _script(ch: str) -> str:
    o = ord(ch)
    if o < 0x80 or 0xC0 <= o < 0x250 or 0x1E00 <= o < 0x1F00:
        return "latin"
    if 0x370 <= o < 0x400 or 0x1F00 <= o < 0x2000:
        return "greek"
    if 0x400 <= o < 0x530:
        return "cyrillic"
    return "other"


def _emoji(ch: str) -> bool:
    o = ord(ch)
    return 0x1F000 <= o < 0x1FB00 or 0x2600 <= o < 0x27C0 or o in (0xFE0F, 0x200D)


@dataclass
class Reading:
    encoding: str
    penalty: float
    example: str  # a word that reads differently in the other candidates


def _penalty(words: Counter, language: str | None = None) -> float:
    """How implausible a decoded text is as words: 0 for clean words of one language per script."""
    bad = 0.0
    letters: dict[str, Counter] = {}
    for word, count in words.items():
        w = 0.0
        for i, ch in enumerate(word):
            if ch.isascii():
                continue
            cat = unicodedata.category(ch)
            if cat in ("Cf", "Zs"):
                continue  # invisible (no-break space, soft hyphen, zero-width characters): normalised later
            if cat[0] == "C":
                return float("inf")  # a control character in a text table: not this encoding
            if cat[0] in "LM":
                if cat[0] == "L":
                    letters.setdefault(_script(ch), Counter())[ch] += count
                continue
            prev_letter = i > 0 and word[i - 1].isalpha()
            next_letter = i + 1 < len(word) and word[i + 1].isalpha()
            if prev_letter and next_letter:
                w += 0 if ch in _INNER_OK else 1
            elif prev_letter or next_letter:
                w += 0 if ch in _EDGE_OK else 1
            else:  # apart from letters: punctuation, currency, emoji and the like, not box drawing or ±³¶
                w += 0 if ch in _EDGE_OK or ch in _ALONE_OK or _emoji(ch) else 1
        alpha = [c for c in word if c.isalpha()]
        symbols = sum(1 for c in word if not c.isascii() and not c.isalpha() and not _emoji(c))
        if symbols >= 2 and len(alpha) <= 1:
            w += 1
        scripts = {_script(c) for c in alpha if not c.isascii()} | ({"latin"} if any(c.isascii() for c in alpha) else set())
        if len(scripts) > 1:
            w += 1
        if scripts == {"latin"} and len(alpha) >= 3 and not any(c.isascii() for c in alpha):
            w += 1  # a Latin-script word has some plain letters (Cyrillic or Greek read as Latin has none)
        if any(a.islower() and b.isupper() for a, b in zip(alpha, alpha[1:])):
            w += 1
        for script, vowels in _VOWELS.items():
            if len(alpha) >= 3 and scripts == {script} and not any(c.lower() in vowels for c in alpha):
                w += 1
        if alpha and (alpha[0].lower() in "ьъы" or "ς" in [c for c in alpha[:-1]]):
            w += 1
        bad += w * count
    for script, counts in letters.items():
        alphabets = _ALPHABETS.get(script)
        if language is not None:  # strict: every non-ASCII letter is one of the language's
            covered = _ALPHABETS[_LANGUAGE_SCRIPT[language]][language]
        elif alphabets is None:
            continue  # letters of scripts no code page here writes (CJK, Arabic, ...): only UTF-8 has them
        else:
            # letters outside the language that covers most; a file may mix two languages of a script
            # (loanwords, translations), at the cost of one point for needing two
            singles, pairs = _SINGLES[script], _PAIRS[script]
            total = sum(counts.values())
            one = total - max(sum(k for c, k in counts.items() if c in a) for a in singles)
            two = total - max((sum(k for c, k in counts.items() if c in a) for a in pairs), default=0) + 1
            bad += min(one, two)
            continue
        bad += sum(k for c, k in counts.items() if c not in covered)
    return bad


class EncodingUnclear(ValueError):
    """No candidate encoding reads clearly best; the message lists the likely ones."""

    def __init__(self, readings: list[Reading], reason: str):
        self.readings = readings
        shown = ", ".join(f"{NAMES.get(r.encoding, r.encoding)} ({r.example!r}): --encoding {r.encoding}" for r in readings[:3])
        super().__init__(f"{reason}{': it reads as ' + shown if shown else ''}")


# the distinct words judged (the most frequent): plenty of evidence, in bounded time for any file size
MAX_WORDS = 4000


def _words(data: bytes) -> Counter:
    words = Counter(m.group() for m in _TOKEN.finditer(data))
    return words if len(words) <= MAX_WORDS else Counter(dict(words.most_common(MAX_WORDS)))


def _decode_words(tokens: Counter, enc: str) -> Counter | None:
    out: Counter = Counter()
    try:
        for tok, k in tokens.items():
            out[tok.decode(enc)] += k
    except UnicodeDecodeError:
        return None
    return out


def utf16_without_bom(data: bytes) -> str | None:
    """utf-16-le or utf-16-be when the file is UTF-16 text without a byte-order mark, else None.

    UTF-16 text has line breaks (0A 00 or 00 0A) at even offsets and decodes to printable characters; read
    in the wrong byte order its line breaks become unassigned code points.
    """
    if len(data) < 4 or len(data) % 2:
        return None
    sample = data[: 1 << 16]
    out = []
    for enc, breaks in (("utf-16-le", (b"\n\x00", b"\r\x00")), ("utf-16-be", (b"\x00\n", b"\x00\r"))):
        if not any(sample[i : i + 2] in breaks for i in range(0, len(sample) - 1, 2)):
            continue
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if all(c in "\t\n\r" or unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn") for c in text[:20000]):
            out.append(enc)
    return out[0] if len(out) == 1 else None


def _foreign(words: Counter) -> bool:
    """Letters of a script no code page here writes (CJK, Arabic, ...)."""
    return any(_script(c) == "other" and c.isalpha() for w in words for c in w)


def _hint(language: str | None) -> str | None:
    """The language whose alphabet is known, from an ISO code such as pl, pt-BR or sr_Latn; None for English."""
    lang = (language or "").lower().replace("_", "-").split("-")[0]
    return lang if lang in _LANGUAGE_SCRIPT else None


def guess_code_page(data: bytes, language: str | None = None) -> str:
    """The single-byte code page of `data`, or EncodingUnclear."""
    tokens = _words(data)
    hint = _hint(language)
    by_text: dict[tuple, list[str]] = {}
    decoded: dict[str, Counter] = {}
    for enc in CODE_PAGES:
        words = _decode_words(tokens, enc)
        if words is None:
            continue
        decoded[enc] = words
        by_text.setdefault(tuple(sorted(words.items())), []).append(enc)
    # candidates that give the same text are one reading (named by the first)
    readings: list[Reading] = []
    for encs in by_text.values():
        enc = encs[0]
        pen = _penalty(decoded[enc])
        readings.append(Reading(enc, pen, ""))
    readings.sort(key=lambda r: r.penalty)
    _examples(readings, decoded, tokens)
    plausible = [r for r in readings if r.penalty != float("inf")]
    if not plausible:
        raise EncodingUnclear([], "it is not UTF-8 and reads as no common code page without control characters")
    best = plausible[0]
    if len(plausible) == 1:
        return best.encoding
    second = plausible[1]
    if best.penalty == 0 and second.penalty >= MARGIN or best.penalty > 0 and second.penalty >= 3 * best.penalty + 3:
        return best.encoding
    if hint is not None:
        # the items' language decides between readings that are all plausible words: the one whose every
        # non-ASCII letter is in that language's alphabet
        close = [r for r in plausible if r.penalty <= best.penalty + 2]
        strict = sorted((_penalty(decoded[r.encoding], hint), i) for i, r in enumerate(close))
        if strict[0][0] == 0 and (len(strict) == 1 or strict[1][0] >= 2):
            return close[strict[0][1]].encoding
    close = [r for r in plausible if r.penalty <= max(3 * best.penalty + 3, best.penalty + 1)]
    raise EncodingUnclear(close, "it is not UTF-8 and more than one code page reads as plausible text")


def _examples(readings: list[Reading], decoded: dict[str, Counter], tokens: Counter) -> None:
    """Give each reading an example word: the most frequent token that the readings decode differently."""
    encs = [r.encoding for r in readings if r.encoding in decoded]
    for tok, _ in tokens.most_common():
        try:
            forms = {tok.decode(e) for e in encs}
        except UnicodeDecodeError:
            continue
        if len(forms) > 1 or len(encs) == 1:
            for r in readings:
                r.example = tok.decode(r.encoding)
            return
    for r in readings:
        r.example = next(iter(decoded[r.encoding]), "")


def reads_as_utf8(line: bytes, enc: str) -> bool:
    """Whether a line that is valid UTF-8 reads better as UTF-8 than in the code page `enc` (short lines of a
    DOS 866 or KOI8 file can be valid UTF-8 by chance, decoding to characters of no language)."""
    tokens = _words(line)
    as_utf8 = _decode_words(tokens, "utf-8")
    if as_utf8 is None:
        return False
    try:
        other = _decode_words(tokens, enc)
    except LookupError:
        return True
    if other is None:
        return True
    p8, pc = _penalty(as_utf8), _penalty(other)
    return p8 < pc or p8 == pc and not _foreign(as_utf8)


def detect(data: bytes, language: str | None = None) -> str:
    """The encoding of a text file (raises EncodingUnclear when no single-byte code page reads clearly best)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in data[:4096] or re.search(rb"[\x01-\x08\x0b\x0e-\x1f]", data[:4096]):
        enc = utf16_without_bom(data)
        if enc is not None:
            return enc
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return guess_code_page(data, language)
    # valid UTF-8 is UTF-8, unless its text reads as no words (short lines of a DOS 866 or KOI8 file can be
    # valid UTF-8 by chance, decoding to private-use or CJK characters) and a code page reads clearly better
    tokens = _words(data)
    as_utf8 = _decode_words(tokens, "utf-8") or Counter()
    utf8 = _penalty(as_utf8)
    hint = _hint(language)
    foreign = _foreign(as_utf8)
    if utf8 == 0 and (hint is None and not foreign or hint is not None and _penalty(as_utf8, hint) == 0):
        return "utf-8"
    if utf8 == 0:  # words, but not of the items' language or of a script no code page has: a code page
        # that reads as plain words (of that language) is a doubt
        for enc in CODE_PAGES:
            words = _decode_words(tokens, enc)
            if words is not None and _penalty(words, hint) == 0:
                raise EncodingUnclear(
                    [Reading("utf-8", 0, next(iter(as_utf8), "")), Reading(enc, 0, next(iter(words), ""))],
                    "it reads as UTF-8 and as a code page",
                )
        return "utf-8"
    try:
        enc = guess_code_page(data, language)
    except EncodingUnclear as exc:
        if any(r.penalty <= utf8 for r in exc.readings) or utf8 == float("inf"):
            raise EncodingUnclear([*exc.readings, Reading("utf-8", utf8, "")], "more than one encoding reads as plausible text") from None
        return "utf-8"
    cp = _penalty(_decode_words(tokens, enc) or Counter())
    if utf8 == float("inf") or cp == 0 and utf8 >= 1 or utf8 >= 3 * cp + 3:
        return enc
    if cp < utf8:
        raise EncodingUnclear([Reading(enc, cp, ""), Reading("utf-8", utf8, "")], "it reads as UTF-8 and as a code page")
    return "utf-8"
