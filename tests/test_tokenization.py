"""Tokenizer tests: the tricky rules on a toy vocab, then agreement with an independent implementation
(Hugging Face `tokenizers`, configured as BERT) on every GLUE dev sentence with the real vocab."""
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from bert import tokenization
from bert.tokenization import BasicTokenizer, FullTokenizer, WordpieceTokenizer

TOY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##want", "##ed", "want", "wa", "##aff",
             "##able", "runn", "##ing", ",", "!", "'", "hello", "world", "cafe", "a", "##a", "中", "国"]


@pytest.fixture
def toy_vocab_file(tmp_path: Path) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TOY_VOCAB) + "\n", encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- unit tests on the tricky rules

def test_load_vocab_ids_are_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes("[PAD]\r\nhello \n##ing\t\n".encode("utf-8"))
    assert dict(tokenization.load_vocab(str(path))) == {"[PAD]": 0, "hello": 1, "##ing": 2}


def test_accents_are_stripped_only_when_lower_casing() -> None:
    assert BasicTokenizer(do_lower_case=True).tokenize(u"Café HÉLLO naïve") == ["cafe", "hello", "naive"]
    assert BasicTokenizer(do_lower_case=False).tokenize(u"Café HÉLLO") == [u"Café", u"HÉLLO"]


def test_cjk_ideographs_become_single_words() -> None:
    # Ideographs are split apart; Katakana (not a CJK Unified Ideograph block) stays joined.
    assert BasicTokenizer().tokenize(u"ab中国cd") == ["ab", u"中", u"国", "cd"]
    assert BasicTokenizer().tokenize(u"カタカナ") == [u"カタカナ"]
    assert BasicTokenizer().tokenize(u"\U00020000x") == [u"\U00020000", "x"]  # CJK Extension B


def test_control_chars_are_removed_and_whitespace_normalised() -> None:
    text = u"he\x00llo\ufffd wo\x07rld\u200b\tfoo\nbar\u00a0baz\u3000qux\x80"
    assert BasicTokenizer().tokenize(text) == ["hello", "world", "foo", "bar", "baz", "qux"]


def test_each_punctuation_char_is_its_own_token() -> None:
    # ASCII symbols like $ ^ ` count as punctuation even though Unicode calls them S*; "¿" and "—" are P*.
    assert BasicTokenizer().tokenize(u"Don't!! $5^2`x ¿qué?—no") == [
        "don", "'", "t", "!", "!", "$", "5", "^", "2", "`", "x", u"¿", "que", "?", u"—", "no"]
    assert BasicTokenizer().tokenize(u"a+b") == ["a", "+", "b"]  # "+" is ASCII 43 -> punctuation
    assert BasicTokenizer().tokenize(u"a×b") == [u"a×b"]  # "×" is Sm and not ASCII -> not punctuation


@pytest.mark.parametrize("char", [u"\ue000", u"\U000f0000", u"\u0378", u"\U0010ffff"],
                         ids=["Co U+E000", "Co U+F0000", "Cn U+0378", "Cn U+10FFFF"])
def test_private_use_and_unassigned_code_points_stay_in_their_word(toy_vocab_file: str, tmp_path: Path,
                                                                    char: str) -> None:
    """Google deletes only Cc and Cf characters: a private-use (Co) or unassigned (Cn) one is text."""
    basic = BasicTokenizer()
    assert basic.tokenize(u"Wa%sNT" % char) == [u"wa%snt" % char]  # inside a word
    assert basic.tokenize(u"hello %s world" % char) == ["hello", char, "world"]  # alone
    assert basic.tokenize(u"(%s), it%s!" % (char, char)) == ["(", char, ")", ",", u"it%s" % char, "!"]
    tokenizer = FullTokenizer(toy_vocab_file)
    # Not in the vocab: the whole word is unknown (not "hello" with the character dropped).
    assert tokenizer.tokenize(u"hello%s world" % char) == ["[UNK]", "world"]
    assert tokenizer.tokenize(u"%s, hello!%s" % (char, char)) == ["[UNK]", ",", "hello", "!", "[UNK]"]
    with_char = tmp_path / "with_char.txt"
    with_char.write_text("\n".join(TOY_VOCAB + ["##" + char]) + "\n", encoding="utf-8")
    assert FullTokenizer(str(with_char)).tokenize(u"hello%s" % char) == ["hello", "##" + char]


# Texts where `tokenizers` (0.13/0.15) is not Google's tokenizer, with Google's words; we follow Google.
# None occurs in the GLUE dev sets, so the agreement test below is unaffected.
KNOWN_DIFFERENCES = [
    # Google lower-cases with Python's str.lower(), which maps a word-final capital sigma to "ς"
    # (Unicode Final_Sigma rule); `tokenizers` lower-cases char by char and always gives "σ".
    (u"ΟΔΟΣ ΣΟΣ.", [u"οδος", u"σος", "."]),
    # Google's last ideograph range starts at U+2B820 (CJK Ext. E); `tokenizers` starts it at U+2B920.
    (u"a\U0002B820b", ["a", u"\U0002B820", "b"]),
    # Private-use code points (Co) are text for Google (only Cc and Cf are control); `tokenizers` drops
    # them. Unassigned ones (Cn) both keep (TRICKY_TEXTS below).
    (u"a\ue000b", [u"a\ue000b"]),
]


@pytest.mark.parametrize("text,words", KNOWN_DIFFERENCES, ids=[repr(text) for text, _ in KNOWN_DIFFERENCES])
def test_google_semantics_where_hugging_face_differs(text: str, words: List[str]) -> None:
    assert BasicTokenizer().tokenize(text) == words


def test_wordpiece_uses_greedy_longest_match_with_continuation_pieces() -> None:
    wordpiece = WordpieceTokenizer(vocab={t: i for i, t in enumerate(TOY_VOCAB)})
    assert wordpiece.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert wordpiece.tokenize("unaffable") == ["un", "##aff", "##able"]


def test_wordpiece_unknowns() -> None:
    wordpiece = WordpieceTokenizer(vocab={t: i for i, t in enumerate(TOY_VOCAB)})
    # One unknown piece makes the *whole* word a single [UNK] (not "un" + "[UNK]").
    assert wordpiece.tokenize("unwantedx hello") == ["[UNK]", "hello"]
    assert wordpiece.tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert wordpiece.tokenize("a" * 201) == ["[UNK]"]
    # a second time from the remembered words, unchanged by what a caller did with the first answer
    wordpiece.tokenize("unwantedx hello").append("x")
    assert wordpiece.tokenize("unwantedx hello unwantedx") == ["[UNK]", "hello", "[UNK]"]


def test_full_tokenizer_and_id_conversion(toy_vocab_file: str) -> None:
    tokenizer = FullTokenizer(toy_vocab_file, do_lower_case=True)
    tokens = tokenizer.tokenize(u"UNwant\u00e9d,running! 中国")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing", "!", u"中", u"国"]
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert ids == [4, 5, 6, 13, 11, 12, 14, 21, 22]
    assert tokenizer.convert_ids_to_tokens(ids) == tokens
    assert tokenizer.tokenize(b"hello world") == ["hello", "world"]  # UTF-8 bytes are accepted
    assert tokenizer.tokenize(u"[SEP]") == ["[UNK]", "[UNK]", "[UNK]"]  # no special-token matching in text
    assert len(tokenizer.vocab) == len(tokenizer.inv_vocab) == len(TOY_VOCAB)


# ---------------------------------------------------------------- agreement with a reference on GLUE

# (relative dev file, has header, sentence columns, expected row count or None if not in our copy).
GLUE_DEV_FILES = [
    ("CoLA/dev.tsv", False, (3,), 1043),
    ("SST-2/dev.tsv", True, (0,), 872),
    ("MRPC/dev.tsv", True, (3, 4), 408),
    ("STS-B/dev.tsv", True, (7, 8), 1500),
    ("QNLI/dev.tsv", True, (1, 2), 5463),
    ("RTE/dev.tsv", True, (1, 2), 277),
    ("WNLI/dev.tsv", True, (1, 2), 71),
    ("diagnostic/diagnostic.tsv", True, (1, 2), 1104),
    # Not in the shared copy; checked too whenever a full GLUE download is used.
    ("MNLI/dev_matched.tsv", True, (8, 9), None),
    ("MNLI/dev_mismatched.tsv", True, (8, 9), None),
    ("QQP/dev.tsv", True, (3, 4), None),
]


def _read_sentences(path: Path, has_header: bool, columns: Sequence[int]) -> Tuple[int, List[str]]:
    """Plain TSV (quotes are literal text). Lines are split on "\\n" only, so any other odd line
    separator inside a sentence stays in the text and gets tokenized too."""
    with open(str(path), "r", encoding="utf-8", newline="") as f:
        lines = [line[:-1] if line.endswith("\r") else line for line in f.read().split("\n")]
    rows = [line.split("\t") for line in lines[1 if has_header else 0:] if line]
    return len(rows), [row[c] for row in rows for c in columns if c < len(row)]


@pytest.fixture(scope="module")
def reference_tokenizer(vocab_file: str):
    """BERT as configured in `tokenizers` (0.13 and 0.15 share this API). Built from parts rather than
    BertWordPieceTokenizer because that one keeps WordPiece's default 100-char word limit (Google: 200)
    and registers [CLS]/[SEP]/... as added tokens that would be matched inside raw text."""
    tokenizers = pytest.importorskip("tokenizers")
    model = tokenizers.models.WordPiece.from_file(vocab_file, unk_token="[UNK]", max_input_chars_per_word=200)
    reference = tokenizers.Tokenizer(model)
    reference.normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)  # accents follow lowercase
    reference.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    return reference


@pytest.fixture(scope="module")
def full_tokenizer(vocab_file: str) -> FullTokenizer:
    return FullTokenizer(vocab_file, do_lower_case=True)


def test_real_vocab_is_uncased_bert(full_tokenizer: FullTokenizer) -> None:
    assert len(full_tokenizer.vocab) == 30522
    assert [full_tokenizer.vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]


TRICKY_TEXTS = [
    u"Ünïcödé ÀÉÎÕÜ çañón Øresund straße İstanbul ﬁne",  # accents, ligature, dotted capital I
    u"tab\tnl\ncr\rnbsp\u00a0ideo\u3000ogham\u1680thin\u2009ls\u2028ps\u2029vt\x0bff\x0cnel\x85end",
    u"zero\u200bwidth\ufeffbom\u00adshy\x00nul\ufffdrepl\x07bell\x1besc\x80c1",
    u"un\u0378known \u0378 (\u0378) end\U0010ffff.",  # unassigned (Cn): kept, so the word is [UNK]
    u"中文字符和日本語のテキスト、한국어도。",
    u"\"Quotes\" — dashes – 'apostrophes' … ¿¡ $5.00 50% a+b=c <tag> [CLS] ~@#^&*_`|\\{}",
    u"e\u0301 combining o\u0308 Ä\u0323 \u0301\u0301",
    u"supercalifragilisticexpialidocious " + u"x" * 150 + u" " + u"y" * 250,
]


def test_ids_match_reference_on_tricky_texts(full_tokenizer: FullTokenizer, reference_tokenizer) -> None:
    """Whitespace, control, accent and CJK cases that the GLUE dev sets barely exercise."""
    for text in TRICKY_TEXTS:
        ours = full_tokenizer.tokenize(text)
        theirs = full_tokenizer.convert_ids_to_tokens(reference_tokenizer.encode(text, add_special_tokens=False).ids)
        assert ours == theirs, repr(text)


@pytest.mark.parametrize("text", [text for text, _ in KNOWN_DIFFERENCES], ids=repr)
def test_known_differences_are_real(full_tokenizer: FullTokenizer, reference_tokenizer, text: str) -> None:
    """Each entry of KNOWN_DIFFERENCES still tokenizes differently in `tokenizers` (else it is no longer one)."""
    theirs = reference_tokenizer.encode(text, add_special_tokens=False).ids
    assert full_tokenizer.convert_tokens_to_ids(full_tokenizer.tokenize(text)) != theirs


@pytest.mark.parametrize("relative_path,has_header,columns,expected_rows", GLUE_DEV_FILES,
                         ids=[entry[0] for entry in GLUE_DEV_FILES])
def test_ids_match_reference_on_glue_dev(glue_dir: Path, full_tokenizer: FullTokenizer, reference_tokenizer,
                                         relative_path: str, has_header: bool, columns: Sequence[int],
                                         expected_rows) -> None:
    path = glue_dir / relative_path
    if not path.exists():
        if expected_rows is not None:
            pytest.fail("missing GLUE dev file %s" % path)
        pytest.skip("%s is not in this GLUE copy" % relative_path)
    n_rows, sentences = _read_sentences(path, has_header, columns)
    if expected_rows is not None:
        assert n_rows == expected_rows, "unexpected row count in %s" % path
    assert sentences

    theirs = [encoding.ids for encoding in reference_tokenizer.encode_batch(sentences, add_special_tokens=False)]
    mismatches = []
    for sentence, their_ids in zip(sentences, theirs):
        our_ids = full_tokenizer.convert_tokens_to_ids(full_tokenizer.tokenize(sentence))
        if our_ids != their_ids:
            mismatches.append("%r\n  ours:   %s\n  theirs: %s" % (
                sentence, full_tokenizer.convert_ids_to_tokens(our_ids), full_tokenizer.convert_ids_to_tokens(their_ids)))
    assert not mismatches, "%d of %d sentences differ, first ones:\n%s" % (
        len(mismatches), len(sentences), "\n".join(mismatches[:5]))
