"""Property-based fuzz tests (hypothesis) over the tokenizer, the GLUE reader and feature conversion.

Inputs are random unicode (control and format characters, combining accents, CJK, emoji, lone
surrogates, unassigned code points), very long words, empty and whitespace-only text, quotes, CRLF
line endings and TABs inside fields. Nothing may crash, and every output must keep the invariants the
model relies on. Runs are derandomized and use no example database, so every run (and CI) tries the
same examples; a failure prints the smallest input that shows it.
"""
import os
import re
import string
import tempfile
import unicodedata
from typing import List, NamedTuple, Optional

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from bert import tokenization
from bert.data import features, processors

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=100)  # the slower ones: files on disk, whole examples

# ---------------------------------------------------------------- random text

SURROGATES = ["\ud800", "\udbff\udc00", "\udfff"]  # lone halves: possible in a str, never in UTF-8 files
# Hand-picked characters per kind (each list is drawn from as often as a whole random-text strategy).
# CONTROL_AND_SPACE ends with the other C* kinds, unassigned (Cn) and private use (Co), which stay in their word.
CONTROL_AND_SPACE = ["", " ", "  ", "\t", "\n", "\r", "\r\n", "\x00", "\x07", "\x1b", "\x1c", "\x7f", "\x80", "\x85",
                     "\x0b", "\x0c", "\u00a0", "\u1680", "\u2009", "\u200b", "\u200d", "\u2028", "\u2029", "\u3000",
                     "\ufeff", "\ufffd", "\u00ad", "\u0378", "\ue000", "\U0010ffff"]
MARKS_AND_CASE = ["\u0301", "\u0308", "\u0323", "\u20dd", "e\u0301", "A\u030a", "\u0130", "\u039f\u0394\u039f\u03a3",
                  "\u00df", "\u1e9e", "\ufb01", "\u212b", "\u2126", "\u01c5", "\u1fef", "\u1fed", "\u00c9", "\u00f1",
                  "\u0152", "\u0131", "\u03a3", "\u00d8"]
SCRIPTS = ["\u4e2d", "\u56fd", "\uf900", "\U00020000", "\U0002b820", "\U0002ceb0", "\u30ab\u30bf\u30ab\u30ca",
           "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd", "\u0e2a\u0e27\u0e31\u0e2a",
           "\u0928\u092e\u0938\u094d\u0924\u0947", "\U0001f600", "\U0001f44d\U0001f3fd",
           "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1e9\U0001f1ea", "\u2603\ufe0f"]
PUNCT_AND_SPECIAL = ['"', "'", '""', '"quoted"', "\u201c", "\u201d", "\u00ab", "\u00bb", "\\", "\\t", "`", "^", "$",
                     "[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]", "[unused0]", "##", "##ing", "don't", "$5.00",
                     "\u2026", "\u2014", "\u00bf\u00a1", "<tag>", "\u00d7", "x" * 200, "x" * 201, "\u00e9" * 230]


def _chars(lo: int, hi: int) -> st.SearchStrategy:
    return st.characters(min_codepoint=lo, max_codepoint=hi)


def _pieces(surrogates: bool) -> st.SearchStrategy:
    """Short runs of one kind of character, so that joined they mix scripts, marks and separators."""
    return st.one_of(
        st.text(max_size=12),  # any code point but surrogates
        st.text(_chars(0, 0x7F), max_size=12),  # ASCII, control characters included
        st.sampled_from(CONTROL_AND_SPACE + (SURROGATES if surrogates else [])),
        st.sampled_from(MARKS_AND_CASE),
        st.sampled_from(SCRIPTS),
        st.sampled_from(PUNCT_AND_SPECIAL),
        st.text(_chars(0x300, 0x36F), min_size=1, max_size=3),  # combining marks, also at a word's start
        st.text(_chars(0x4E00, 0x9FFF), min_size=1, max_size=8),  # CJK ideographs
        st.text(_chars(0x1F300, 0x1FAFF), min_size=1, max_size=4),  # emoji
        st.text(st.sampled_from(" \t\r\n\u00a0\u3000\u2028"), min_size=1, max_size=4),  # whitespace runs
        st.text(st.sampled_from(string.punctuation + "\u00bf\u00a1\u2014\u2013\u2026\u00ab\u00bb\u201c\u201d"),
                min_size=1, max_size=12),  # punctuation only
        long_words(string.ascii_letters + string.digits + "\u00e9\u00c9\u4e2d\U0001f600!-"),
    )


def long_words(alphabet: str) -> st.SearchStrategy:
    """Words of 1-600 characters, often right at the 200-character limit (plain st.text stays short)."""
    return st.builds(lambda chunk, n: (chunk * n)[:n], st.text(alphabet, min_size=1, max_size=30),
                     st.one_of(st.integers(1, 600), st.integers(195, 205)))


def texts(surrogates: bool = True) -> st.SearchStrategy:
    return st.lists(_pieces(surrogates), max_size=10).map("".join)


def with_every_tricky_piece(surrogates: bool = True):
    """Also run the test on all hand-picked pieces at once, run together and each inside a word: random
    draws favour some list entries, and this way none is ever left out."""
    pieces = CONTROL_AND_SPACE + MARKS_AND_CASE + SCRIPTS + PUNCT_AND_SPECIAL + (SURROGATES if surrogates else [])

    def decorate(test):
        for text in ("".join(pieces), " ".join("a%sb" % piece for piece in pieces)):
            for lower in (True, False):
                test = example(text=text, lower=lower)(test)
        return test
    return decorate


@pytest.fixture(scope="module")
def uncased(vocab_file) -> tokenization.FullTokenizer:
    return tokenization.FullTokenizer(vocab_file, do_lower_case=True)


@pytest.fixture(scope="module")
def cased(vocab_file) -> tokenization.FullTokenizer:
    return tokenization.FullTokenizer(vocab_file, do_lower_case=False)


# ---------------------------------------------------------------- tokenizer

SPECIAL = {"[CLS]", "[SEP]", "[PAD]", "[MASK]"}


def _is_removed(char: str) -> bool:
    """What basic tokenization deletes: NUL, U+FFFD, control and format characters (Cc, Cf) and
    whitespace - as Google's tokenizer does. Private-use, unassigned and surrogate code points (Co, Cn,
    Cs) are kept."""
    return char in "\x00\ufffd" or unicodedata.category(char) in ("Cc", "Cf", "Zs") or char.isspace()


def _is_punct(char: str) -> bool:
    """Google's punctuation: Unicode P* plus every non-alphanumeric printable ASCII character."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


@FUZZ
@given(text=texts(), lower=st.booleans())
@with_every_tricky_piece()
def test_tokens_are_vocab_entries_with_ids(uncased, cased, text, lower):
    """Any text tokenizes without error into vocab entries (no empty or whitespace-bearing piece, no
    [CLS]/[SEP] taken from the text), and ids map back to the same tokens."""
    tokenizer = uncased if lower else cased
    tokens = tokenizer.tokenize(text)
    assert all(token in tokenizer.vocab for token in tokens)
    assert not SPECIAL & set(tokens) and not any(t.startswith("[unused") for t in tokens)
    assert all(token and not any(c.isspace() or unicodedata.category(c)[0] == "C" for c in token)
               for token in tokens)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert all(0 <= i < len(tokenizer.vocab) for i in ids)
    assert tokenizer.convert_ids_to_tokens(ids) == tokens
    if all(_is_removed(c) for c in text):  # empty, whitespace-only, control characters only
        assert tokens == []


@FUZZ
@given(text=texts(surrogates=False), lower=st.booleans())
@with_every_tricky_piece(surrogates=False)
def test_utf8_bytes_tokenize_like_the_text(uncased, cased, text, lower):
    """Bytes are decoded as UTF-8 first, so they give exactly the tokens of the text."""
    tokenizer = uncased if lower else cased
    assert tokenizer.tokenize(text.encode("utf-8")) == tokenizer.tokenize(text)


@FUZZ
@given(a=texts(), b=texts(), separator=st.sampled_from([" ", "\t", "\n", "\r\n", "\u3000", "\u00a0", "  "]))
@example(a="".join(CONTROL_AND_SPACE + MARKS_AND_CASE + SCRIPTS + PUNCT_AND_SPECIAL + SURROGATES),
         b="".join(MARKS_AND_CASE + PUNCT_AND_SPECIAL + SCRIPTS), separator=" ")
def test_whitespace_separates_independent_words(uncased, a, b, separator):
    """Every rule works within a whitespace-delimited word, so text joined by whitespace tokenizes into
    the concatenation of the parts' tokens (the property that lets sentences be tokenized apart)."""
    assert uncased.tokenize(a + separator + b) == uncased.tokenize(a) + uncased.tokenize(b)


@FUZZ
@given(text=texts(), lower=st.booleans())
@with_every_tricky_piece()
def test_basic_tokenizer_words(uncased, cased, text, lower):
    """Basic tokenization yields clean words: no whitespace, control or format characters, every
    punctuation character and CJK ideograph alone; uncased words are lower-case and accent-free.
    Re-tokenizing the words joined by spaces gives them back (tokenization is idempotent)."""
    basic = (uncased if lower else cased).basic_tokenizer
    words = basic.tokenize(text)
    for word in words:
        assert word and not any(_is_removed(c) for c in word), repr(word)
        if any(_is_punct(c) or 0x4E00 <= ord(c) <= 0x9FFF for c in word):
            assert len(word) == 1, repr(word)
        if lower:
            assert word == word.lower() and not any(unicodedata.category(c) == "Mn" for c in word), repr(word)
    assert basic.tokenize(" ".join(words)) == words
    if not lower:  # cased: characters are only ever deleted, never changed or reordered
        assert "".join(words) == "".join(c for c in text if not _is_removed(c))


@FUZZ
@given(text=st.lists(st.one_of(st.text(_chars(0, 0x7F), max_size=12), st.sampled_from(
    [c for c in CONTROL_AND_SPACE + PUNCT_AND_SPECIAL if c.isascii()])), max_size=10).map("".join),
       lower=st.booleans())
def test_ascii_text_takes_the_fast_path_to_the_same_words(uncased, cased, text, lower):
    """ASCII text (most GLUE text) is split by two regular expressions instead of a character at a time: the
    words must be those of the general rules, control characters, tabs and every punctuation mark included."""
    basic = (uncased if lower else cased).basic_tokenizer
    assert basic.tokenize(text) == basic._unicode_words(text)
    assert basic.tokenize(text.encode("ascii")) == basic._unicode_words(text)


@FUZZ
@given(text=texts(), lower=st.booleans())
@with_every_tricky_piece()
def test_wordpiece_splits_each_word_greedily_or_into_one_unk(uncased, cased, text, lower):
    """Each word becomes either one [UNK] (always when longer than 200 characters) or pieces that spell
    it exactly ("##" marking continuations), each the longest vocab match at its position."""
    tokenizer = uncased if lower else cased
    vocab, all_pieces = tokenizer.vocab, []
    for word in tokenizer.basic_tokenizer.tokenize(text):
        pieces = tokenizer.wordpiece_tokenizer.tokenize(word)
        all_pieces += pieces
        if len(word) > 200 or pieces == ["[UNK]"]:
            assert pieces == ["[UNK]"], repr(word)
            assert len(word) > 200 or not (word[0] in vocab and all("##" + c in vocab for c in word[1:])), \
                "%r can be spelled character by character, yet is [UNK]" % word
            continue
        assert not pieces[0].startswith("##") and all(p.startswith("##") for p in pieces[1:])
        assert pieces[0] + "".join(p[2:] for p in pieces[1:]) == word
        start = 0
        for i, piece in enumerate(pieces):
            end = start + len(piece) - (2 if i else 0)
            prefix = "" if i == 0 else "##"
            assert not any(prefix + word[start:k] in vocab for k in range(end + 1, len(word) + 1)), \
                "%r: a longer piece than %r is in the vocab" % (word, piece)
            start = end
    assert tokenizer.tokenize(text) == all_pieces


@FUZZ
@given(word=long_words(string.ascii_letters + string.digits))
def test_long_words_are_one_unk_and_short_ones_are_spelled(uncased, word):
    """Google's 200-character limit per word: longer words are a single [UNK]; shorter ASCII words
    are always spelled out (the vocab has every letter and digit, also as a "##" piece)."""
    tokens = uncased.tokenize(word)
    if len(word) > 200:
        assert tokens == ["[UNK]"]
    else:
        assert "[UNK]" not in tokens and tokens[0] + "".join(t[2:] for t in tokens[1:]) == word.lower()


# ---------------------------------------------------------------- GLUE reader

class Layout(NamedTuple):
    """An official GLUE file layout, written down independently of processors.TASKS."""

    header: Optional[str]
    columns: int
    index: Optional[int]
    text_a: int
    text_b: Optional[int]
    label: Optional[int]
    labels: tuple  # () for STS-B scores


_NLI = ("contradiction", "entailment", "neutral")
_MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
                "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
LAYOUTS = {
    ("CoLA", "train"): Layout(None, 4, None, 3, None, 1, ("0", "1")),
    ("CoLA", "test"): Layout("index\tsentence", 2, 0, 1, None, None, ()),
    ("SST-2", "dev"): Layout("sentence\tlabel", 2, None, 0, None, 1, ("0", "1")),
    ("SST-2", "test"): Layout("index\tsentence", 2, 0, 1, None, None, ()),
    ("MRPC", "train"): Layout("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String", 5, None, 3, 4, 0, ("0", "1")),
    ("STS-B", "train"): Layout("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
                               10, 0, 7, 8, 9, ()),
    ("STS-B", "test"): Layout("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2",
                              9, 0, 7, 8, None, ()),
    ("RTE", "dev"): Layout("index\tsentence1\tsentence2\tlabel", 4, 0, 1, 2, 3, ("entailment", "not_entailment")),
    ("RTE", "test"): Layout("index\tsentence1\tsentence2", 3, 0, 1, 2, None, ()),
    ("MNLI", "dev_mismatched"): Layout(_MNLI_HEADER, 16, 0, 8, 9, 15, _NLI),
}
SCORES = st.one_of(st.floats(0, 5).map(lambda x: "%.3f" % x), st.sampled_from(["0", "5", "5.000", "2.5", " 4.0", "1e0"]))

FIELD_TRICKY = ['"', '""', "'", ' "', '"a "b" c"', "\r", "\x0b", "\x0c", "\x1c", "\x1e", "\x85", "\u2028", "\u2029",
                "\ufeff", "", " ", "e\u0301", "\u4e2d\u6587", "\U0001f600", "\\t", "\\n", "x" * 300, ",", ";"]
# A field is any text without TAB or LF (TSV cannot hold them); a stray CR stays inside the field.
FIELDS = st.lists(st.one_of(st.text(max_size=10), st.sampled_from(FIELD_TRICKY)), max_size=5).map(
    lambda parts: "".join(parts).replace("\t", " ").replace("\n", " "))


class Row(NamedTuple):
    cols: List[str]
    kind: str  # "ok", "short" (too few columns) or "tab" (a TAB inside a field: too many columns)


@st.composite
def glue_files(draw, malformed: bool):
    """(task, split, layout, rows, line ending, final newline?, BOM?) for one random GLUE file."""
    task, split = draw(st.sampled_from(sorted(LAYOUTS)))
    layout = LAYOUTS[(task, split)]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        cols = [draw(FIELDS) for _ in range(layout.columns)]
        if layout.label is not None:
            cols[layout.label] = draw(st.sampled_from(layout.labels) if layout.labels else SCORES)
        # A trailing CR is part of the line ending by design (CRLF files), so the last field has none.
        cols[-1] = cols[-1].rstrip("\r")
        kind = draw(st.sampled_from(["ok", "ok", "short", "tab"] if malformed else ["ok", "ok", "ok", "short"]))
        if kind == "short":
            cols = cols[:draw(st.integers(0, layout.columns - 1))]
        elif kind == "tab":
            col = draw(st.integers(0, layout.columns - 1))
            at = draw(st.integers(0, len(cols[col])))
            cols[col] = cols[col][:at] + "\t" * draw(st.integers(1, 2)) + cols[col][at:]
        rows.append(Row(cols, kind))
    return task, split, layout, rows, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()), draw(st.booleans())


def _write(directory: str, task: str, split: str, layout: Layout, rows: List[Row], eol: str, final_eol: bool,
           bom: bool) -> str:
    lines = ([layout.header] if layout.header is not None else []) + ["\t".join(row.cols) for row in rows]
    text = eol.join(lines) + (eol if final_eol and lines else "")
    if bom and text and not text.startswith("\ufeff"):  # (a file of just a BOM reads as one empty, short row)
        text = "\ufeff" + text
    path = os.path.join(directory, processors.get_task(task).splits[split].file)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return path


def _present(rows: List[Row], final_eol: bool) -> List[Row]:
    """An empty last row with no line ending after it is no line at all."""
    if rows and not final_eol and rows[-1].cols in ([], [""]):
        return rows[:-1]
    return rows


def _expected(split: str, layout: Layout, row: Row, row_no: int) -> processors.InputExample:
    cols = row.cols
    label = None
    if layout.label is not None:
        label = cols[layout.label] if layout.labels else float(cols[layout.label])
    return processors.InputExample(
        guid="%s-%s" % (split, cols[layout.index] if layout.index is not None else row_no),
        text_a=cols[layout.text_a], text_b=cols[layout.text_b] if layout.text_b is not None else None, label=label)


@FEW
@given(glue_files(malformed=False))
def test_reader_gives_one_exact_example_per_well_formed_row(file):
    """Quotes, CRs, odd line separators, a BOM, CRLF endings and empty fields are all literal data:
    each well-formed row is one example with its fields exactly as written; short rows are skipped,
    counted by line number, and keep their row number (guids do not shift)."""
    task, split, layout, rows, eol, final_eol, bom = file
    rows = _present(rows, final_eol)
    first_line = 2 if layout.header is not None else 1
    with tempfile.TemporaryDirectory() as directory:
        _write(directory, task, split, layout, rows, eol, final_eol, bom)
        examples, stats = processors.read_examples_with_stats(task, directory, split)
    expected = [_expected(split, layout, row, row_no) for row_no, row in enumerate(rows) if row.kind == "ok"]
    assert examples == expected
    short_lines = [first_line + i for i, row in enumerate(rows) if row.kind == "short"]
    assert sorted(line for lines in stats.skipped.values() for line in lines) == short_lines


@FEW
@given(glue_files(malformed=True))
def test_reader_with_tabs_inside_fields_fails_only_with_file_and_line(file):
    """A TAB inside a field makes a row too long. The reader may keep it (extra columns are ignored),
    skip it (a first line that looks like a header) or reject it with a ValueError naming the file and
    the line - nothing else; the well-formed rows still come out exactly and in order."""
    task, split, layout, rows, eol, final_eol, bom = file
    rows = _present(rows, final_eol)
    first_line = 2 if layout.header is not None else 1
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, task, split, layout, rows, eol, final_eol, bom)
        try:
            examples = processors.read_examples(task, directory, split)
        except ValueError as error:
            found = re.match(re.escape(path) + r" line (\d+): ", str(error))
            assert found, str(error)
            row = int(found.group(1)) - first_line
            assert row >= 0 and rows[row].kind == "tab", str(error)
            return
    def content(e):  # not the guid: row numbers shift when a header-like first line is skipped
        return e.text_a, e.text_b, e.label

    wanted = [content(_expected(split, layout, row, 0)) for row in rows if row.kind == "ok"]
    got = iter(content(e) for e in examples)
    assert all(any(g == w for g in got) for w in wanted), "a well-formed row is missing or out of order"
    assert len(wanted) <= len(examples) <= len([row for row in rows if row.kind != "short"])


@FEW
@given(before=FIELDS, junk=st.binary(min_size=1, max_size=8).map(lambda b: b.replace(b"\t", b"").replace(b"\n", b"")),
       line=st.integers(0, 2))
def test_reader_reports_bytes_that_are_not_utf8_with_file_and_line(before, junk, line):
    """Undecodable bytes are a ValueError naming the file and line; decodable ones are read as text."""
    rows = [["%d" % i, "s1", "s2", "entailment"] for i in range(3)]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "dev.tsv")
        with open(path, "wb") as f:
            f.write(b"index\tsentence1\tsentence2\tlabel\n")
            for i, row in enumerate(rows):
                a = before.encode("utf-8") + junk if i == line else row[1].encode("utf-8")
                f.write(b"\t".join([row[0].encode(), a, row[2].encode(), row[3].encode()]) + b"\n")
        try:
            decoded = junk.decode("utf-8")
        except UnicodeDecodeError:
            with pytest.raises(ValueError, match=re.escape("%s line %d: not UTF-8" % (path, line + 2))):
                processors.read_examples("RTE", directory, "dev")
        else:
            assert processors.read_examples("RTE", directory, "dev")[line].text_a == before + decoded


# ---------------------------------------------------------------- features

def _google_lengths(len_a: int, len_b: int, budget: int):
    """Kept token counts under Google's _truncate_seq_pair: while too long, drop the last token of the
    longer list (of the second one on a tie). Stated in closed form so the test is not the code again."""
    if len_a + len_b <= budget:
        return len_a, len_b
    shorter = min(len_a, len_b)
    if 2 * shorter <= budget:  # the shorter one survives whole
        return (len_a, budget - len_a) if len_a <= len_b else (budget - len_b, len_b)
    return (budget + 1) // 2, budget // 2  # both cut to (nearly) half; a keeps the odd token


def _google_tokens(tokens_a: List[str], tokens_b: Optional[List[str]], max_seq_length: int) -> List[str]:
    """Google's convert_single_example layout: [CLS] a [SEP] (b [SEP]) with the budget it uses."""
    if tokens_b:
        keep_a, keep_b = _google_lengths(len(tokens_a), len(tokens_b), max_seq_length - 3)
        tokens_a, tokens_b = tokens_a[:keep_a], tokens_b[:keep_b]
    else:
        tokens_a = tokens_a[:max(max_seq_length - 2, 0)]
    return ["[CLS]"] + tokens_a + ["[SEP]"] + (tokens_b + ["[SEP]"] if tokens_b else [])


def _check_layout(f: features.InputFeatures, tokens: List[str], tokenizer, max_seq_length: int) -> None:
    n = len(tokens)
    assert n <= max_seq_length
    assert len(f.input_ids) == len(f.input_mask) == len(f.segment_ids) == max_seq_length  # always padded
    assert f.input_ids == tokenizer.convert_tokens_to_ids(tokens) + [0] * (max_seq_length - n)
    assert f.input_mask == [1] * n + [0] * (max_seq_length - n)
    first_sep = tokens.index("[SEP]")
    assert f.segment_ids == [0] * (first_sep + 1) + [1] * (n - first_sep - 1) + [0] * (max_seq_length - n)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("[SEP]") in (1, 2)


EXAMPLE_TASKS = ["MRPC", "STS-B", "SST-2"]  # pair, pair with a float score, single sentence


@st.composite
def examples(draw, tiny: bool = False):
    """(task, example, max_seq_length); `tiny` lengths are the least that hold the markers: a pair's
    [CLS] [SEP] [SEP] (3) or a single text's [CLS] [SEP] (2), up to 4."""
    task = processors.get_task(draw(st.sampled_from(EXAMPLE_TASKS)))
    pair = task.splits["dev"].text_b_col is not None
    text_a, text_b = draw(texts()), draw(texts()) if pair else None
    label = draw(st.one_of(st.none(), st.floats(0, 5) if task.is_regression else st.sampled_from(task.labels)))
    max_seq_length = draw(st.integers(3 if pair else 2, 4) if tiny else st.integers(5, 64))
    return task, processors.InputExample("dev-0", text_a, text_b, label), max_seq_length


@FUZZ
@given(drawn=st.one_of(examples(), examples(tiny=True)))
def test_features_are_googles_layout_within_max_seq_length(uncased, drawn):
    """Any example fits max_seq_length with [CLS] first and [SEP] after each text, segment ids 0 then 1
    and a mask over the real tokens, truncated longest-first exactly as Google's _truncate_seq_pair.
    (5 is the least a pair needs to keep a token of each text: [CLS] a [SEP] b [SEP]; below that the
    second text goes first.)"""
    task, example, max_seq_length = drawn
    tokens_a = uncased.tokenize(example.text_a)
    tokens_b = uncased.tokenize(example.text_b) if example.text_b is not None else None
    f = features.convert_example(example, task, max_seq_length, uncased)
    tokens = _google_tokens(tokens_a, tokens_b, max_seq_length)
    _check_layout(f, tokens, uncased, max_seq_length)
    seps = [i for i, token_id in enumerate(f.input_ids) if token_id == uncased.vocab["[SEP]"]]
    if len(seps) == 2:  # fair: a text is cut only if it is longer than what the other one kept
        kept_a, kept_b = seps[0] - 1, seps[1] - seps[0] - 1
        assert kept_a == len(tokens_a) or kept_a >= kept_b
        assert kept_b == len(tokens_b) or kept_b >= kept_a - 1
    if example.label is None:
        assert f.label_id == (0.0 if task.is_regression else 0)
    else:
        assert f.label_id == (float(example.label) if task.is_regression else task.labels.index(example.label))
    assert features.convert_examples([example] * 2, task, max_seq_length, uncased) == [f, f]


@FEW
@given(text_b=st.sampled_from(["", " ", "\t\r\n", "\x00", "\u200b"]), max_seq_length=st.integers(5, 64))
def test_an_empty_second_text_leaves_the_first_googles_budget(uncased, text_b, max_seq_length):
    """A pair whose second text has no tokens (QQP has empty questions) is a single text for Google:
    [CLS] a [SEP] with max_seq_length - 2 tokens of a, not max_seq_length - 3."""
    example = processors.InputExample("dev-0", "word " * 100, text_b, "1")
    f = features.convert_example(example, processors.get_task("MRPC"), max_seq_length, uncased)
    assert sum(f.input_mask) == max_seq_length
