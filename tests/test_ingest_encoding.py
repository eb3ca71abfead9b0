"""Code pages told apart, or refused: never mojibake imported without a word.

Generated files in many code pages and locales (Polish, Czech, Russian,
Ukrainian, Greek, Turkish, German, French and Spanish words; comma,
semicolon or tab separators; decimal points or commas) must come in exactly,
or be refused with one line that names --encoding.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from workbench.cli.main import app
from workbench.errors import WorkbenchError
from workbench.ingest.encoding import CODE_PAGES
from workbench.ingest.readers import read_table
from workbench.ingest.spec import DatasetSpec, RatingColumns
from workbench.ingest.validate import build_norms

WORDS = {
    "pl": ["żółw", "jabłko", "gęś", "źdźbło", "ściana", "mąka", "łódź", "ćma", "pies", "Śląsk", "zażółć", "jaźń", "są"],
    "cs": ["kočka", "řeka", "žluťoučký", "kůň", "dům", "čaj", "ďábel", "něco", "tužka", "příliš", "úsměv", "vlk"],
    "ru": ["яблоко", "молоко", "дом", "Москва", "ёлка", "щука", "съесть", "вода", "книга", "объём", "чай", "сыр"],
    "uk": ["яблуко", "їжак", "ґанок", "єнот", "хліб", "сіль", "вода", "книга", "ще", "дім", "Київ"],
    "el": ["μήλο", "σπίτι", "νερό", "Αθήνα", "καλός", "ψωμί", "γάλα", "θάλασσα", "ουρανός", "ήλιος"],
    "tr": ["ağaç", "şişe", "ılık", "İstanbul", "göz", "üzüm", "çay", "kız", "öğretmen", "ışık", "kedi"],
    "de": ["Äpfel", "schön", "Straße", "über", "Mädchen", "groß", "Öl", "Käse", "Tür", "Hund"],
    "fr": ["très", "café", "garçon", "œuvre", "hôpital", "naïve", "élève", "à", "crème", "forêt", "Noël", "chat"],
    "es": ["niño", "árbol", "corazón", "pingüino", "mañana", "jamón", "café", "lápiz", "año", "perro"],
}
# the code pages a lab in each locale saves from, plus UTF-8 and UTF-16 with and without BOM
NATIVE = {
    "pl": ["cp1250", "iso8859_2"],
    "cs": ["cp1250", "iso8859_2"],
    "ru": ["cp1251", "koi8_r", "cp866"],
    "uk": ["cp1251", "koi8_u"],
    "el": ["cp1253", "iso8859_7"],
    "tr": ["cp1254"],
    "de": ["cp1252", "iso8859_15", "mac_roman"],
    "fr": ["cp1252", "iso8859_15", "mac_roman"],
    "es": ["cp1252", "iso8859_15", "mac_roman"],
}
UNICODE = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"]
SPEC = DatasetSpec("d", item=("Word",), ratings=(RatingColumns("familiarity", mean=("Fam",), scale=(1, 7)),))


def encodable(words: list[str], enc: str) -> bool:
    try:
        "".join(words).encode(enc)
        return True
    except UnicodeEncodeError:
        return False


def render(words: list[str], sep: str, decimal: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    w.writerow(["Word", "Fam"])
    for i, word in enumerate(words):
        w.writerow([word, f"{1 + i % 6}{decimal}5"])
    return buf.getvalue()


def read_items(path: Path, language: str, decimal: str) -> list[str]:
    raw = read_table(path, language=language)
    return build_norms(raw, DatasetSpec(**{**SPEC.__dict__, "decimal": decimal})).items


@st.composite
def files(draw):
    lang = draw(st.sampled_from(sorted(WORDS)))
    words = draw(st.lists(st.sampled_from(WORDS[lang]), min_size=1, max_size=10, unique=True))
    encs = [e for e in [*NATIVE[lang], *CODE_PAGES, *UNICODE] if encodable(words, e)]
    enc = draw(st.sampled_from(list(dict.fromkeys(encs))))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    decimal = draw(st.sampled_from([".", ","]))
    hint = draw(st.sampled_from([lang, "en"]))
    return lang, words, enc, sep, decimal, hint


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_generated_files_come_in_exactly_or_are_refused_in_one_line(case):
    lang, words, enc, sep, decimal, hint = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "norms.csv"
        path.write_bytes(render(words, sep, decimal).encode(enc))
        try:
            items = read_items(path, hint, decimal)
        except WorkbenchError as exc:
            msg = str(exc)
            assert "\n" not in msg and "--encoding" in msg, msg
            assert msg.startswith(f"{path}: cannot tell the file's encoding"), msg
            assert enc not in UNICODE, msg  # Unicode is never a guess
            event("refused")
            return
        assert items == words, (enc, items)
        event("exact")


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_a_whole_word_list_in_its_native_code_page_comes_in_exactly(tmp_path, lang):
    """With the items' language named, each locale's own code pages read without a refusal."""
    for enc in NATIVE[lang]:
        words = [w for w in WORDS[lang] if encodable([w], enc)]
        path = tmp_path / f"{lang}-{enc}.csv"
        path.write_bytes(render(words, ";", ",").encode(enc))
        assert read_items(path, lang, ",") == words, enc
        assert read_table(path, language=lang).encoding in (enc, *CODE_PAGES)


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_and_without_ascii_letters(tmp_path, enc):
    words = ["яблоко", "молоко", "ёлка"]
    path = tmp_path / "u.csv"
    path.write_bytes(render(words, "\t", ".").encode(enc))
    assert read_items(path, "en", ".") == words
    assert read_table(path).encoding == enc


def test_a_single_ambiguous_word_is_refused_naming_encoding_and_language(tmp_path):
    path = tmp_path / "k.csv"
    path.write_bytes("Word;Fam\nkočka;4\n".encode("cp1250"))
    with pytest.raises(WorkbenchError) as exc:
        read_table(path)
    msg = str(exc.value)
    assert "'kočka'): --encoding cp1250" in msg and "'koèka'): --encoding cp1252" in msg
    assert "--language" in msg
    # named, it reads
    assert read_table(path, encoding="cp1250").encoding == "cp1250"
    # so it does with the items' language and a few more words (one is too little to overrule a reading)
    path.write_bytes("Word;Fam\nkočka;4\nřeka;3\ndům;2\n".encode("cp1250"))
    assert read_items(path, "cs", ".") == ["kočka", "řeka", "dům"]


@pytest.mark.parametrize(
    "words, enc, lang",
    [
        (["żółw", "jabłko", "gęś", "pies"], "cp1250", "pl"),
        (["яблоко", "молоко", "дом"], "cp1251", "ru"),
        (["żółw", "jabłko", "gęś", "pies"], "cp1250", "en"),  # without --language: the words alone tell
        (["яблоко", "молоко", "дом"], "cp1251", "en"),
    ],
)
def test_the_issue_files_import_exactly_and_say_how_they_were_read(runner, db_url, tmp_path, words, enc, lang):
    path = tmp_path / "n.csv"
    path.write_bytes(render(words, ";", ",").encode(enc))
    args = ["import", path, "--dataset", "d0", "--item-column", "Word", "--rating", "familiarity=Fam", "--decimal", ","]
    out = runner.invoke(app, [str(a) for a in [*args, "--language", lang, "--db", db_url]])
    assert out.exit_code == 0, out.output
    assert f"note: read as Windows-{enc[2:]}" in out.stdout
    eng = create_engine(db_url)
    with eng.connect() as c:
        got = sorted(c.execute(text("SELECT text FROM items")).scalars())
    eng.dispose()
    assert got == sorted(words)
