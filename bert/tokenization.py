"""BERT's WordPiece tokenizer with the exact semantics of Google's original release.

A pretrained checkpoint only works if text is split into the same pieces it saw in pre-training, so
every rule here (what counts as whitespace, control or punctuation, when accents are stripped) mirrors
Google's tokenizer. Pure Python (stdlib `unicodedata`; bert.files loads TensorFlow only for a vocab at a
URL) so data preparation needs no TensorFlow.
"""
import collections
import re
import unicodedata
from typing import Dict, Iterable, List, Union

from bert import files

# Code point ranges of the CJK Unified Ideograph blocks. BERT's vocab holds these as single
# characters, so each one becomes its own word (Hangul, Kana etc. are *not* in this list).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def convert_to_unicode(text: Union[str, bytes]) -> str:
    """Accept str or UTF-8 bytes (undecodable bytes are dropped, as Google does)."""
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    if isinstance(text, str):
        return text
    raise ValueError("Unsupported string type: %s" % type(text))


def load_vocab(vocab_file: str) -> Dict[str, int]:
    """Read a WordPiece vocab: one token per line, its id is the 0-based line number."""
    vocab = collections.OrderedDict()  # type: Dict[str, int]
    with files.open(vocab_file) as reader:
        for index, line in enumerate(reader):
            vocab[line.rstrip()] = index
    return vocab


# The same rules for ASCII text (most GLUE text), as two regular expressions, several times faster: control
# characters but \t \n \r deleted; words are runs of letters and digits, and every other printable character is
# punctuation, a word of its own.
_ASCII_DELETED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_WORDS = re.compile(r"[0-9A-Za-z]+|[!-/:-@\[-`{-~]")


def _is_whitespace(char: str) -> bool:
    # \t \n \r are category Cc but are treated as whitespace, not as control characters.
    return char in (" ", "\t", "\n", "\r") or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Control (Cc) and format (Cf) characters, which the cleaning step deletes.

    Only these two categories, as in Google's tokenizer since its "support emojis" change: private-use
    (Co), unassigned (Cn) and surrogate (Cs) code points stay in their word, which is then [UNK] unless
    the vocab has them.
    """
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    # All non-alphanumeric printable ASCII ("$", "^", "`" ...) counts, even where Unicode says S*.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return cp >= 0x3400 and any(lo <= cp <= hi for lo, hi in _CJK_RANGES)  # fast path: most text is below


def whitespace_tokenize(text: str) -> List[str]:
    """Split on runs of whitespace (Python's notion), dropping empty strings."""
    return text.split()


class BasicTokenizer(object):
    """Cleans text and splits it into words and single punctuation characters."""

    def __init__(self, do_lower_case: bool = True) -> None:
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str) -> List[str]:
        text = convert_to_unicode(text)
        if text.isascii():
            text = _ASCII_DELETED.sub("", text)
            return _ASCII_WORDS.findall(text.lower() if self.do_lower_case else text)
        return self._unicode_words(text)

    def _unicode_words(self, text: str) -> List[str]:
        """The rules on any text, a character at a time."""
        text = self._tokenize_cjk(self._clean_text(text))
        tokens = []  # type: List[str]
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                # Uncased models were trained on lower-cased, accent-free text; cased ones keep both.
                token = self._strip_accents(token.lower())
            tokens.extend(self._split_on_punctuation(token))
        return whitespace_tokenize(" ".join(tokens))

    @staticmethod
    def _clean_text(text: str) -> str:
        """Drop NUL, U+FFFD and control/format chars; map every whitespace char to a plain space."""
        out = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    @staticmethod
    def _tokenize_cjk(text: str) -> str:
        """CJK text has no spaces between words, so make each ideograph a word of its own."""
        return "".join(" %s " % c if _is_cjk(ord(c)) else c for c in text)

    @staticmethod
    def _strip_accents(text: str) -> str:
        """Decompose (NFD) and drop the combining marks, e.g. "é" -> "e"."""
        return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")

    @staticmethod
    def _split_on_punctuation(text: str) -> List[str]:
        """"don't!" -> ["don", "'", "t", "!"]: each punctuation char stands alone."""
        words = []  # type: List[str]
        start_new = True
        for char in text:
            if _is_punctuation(char):
                words.append(char)
                start_new = True
            else:
                if start_new:
                    words.append("")
                    start_new = False
                words[-1] += char
        return words


class WordpieceTokenizer(object):
    """Splits one word into vocab pieces, greedily taking the longest match first."""

    def __init__(self, vocab: Dict[str, int], unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 200) -> None:
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self._known = {}  # type: Dict[str, List[str]]

    def tokenize(self, text: str) -> List[str]:
        """"unaffable" -> ["un", "##aff", "##able"]; a word that cannot be covered becomes one [UNK]."""
        return [piece for word in whitespace_tokenize(convert_to_unicode(text)) for piece in self.word_pieces(word)]

    def word_pieces(self, word: str) -> List[str]:
        """One word's pieces, remembered: a corpus repeats its words (MRPC's 11,600 sentences have 273,000 words,
        15,700 distinct)."""
        pieces = self._known.get(word)
        if pieces is None:
            if len(self._known) >= 1000000:  # bounded memory on a corpus of many rare words
                self._known.clear()
            pieces = self._known[word] = self._split(word)
        return pieces

    def _split(self, word: str) -> List[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []  # type: List[str]
        start = 0
        while start < len(word):
            end = len(word)
            piece = None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    piece = candidate
                    break
                end -= 1
            if piece is None:  # no prefix of the rest is in the vocab: the whole word is unknown
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


class FullTokenizer(object):
    """Basic tokenization followed by WordPiece: text -> vocab tokens -> ids."""

    def __init__(self, vocab_file: str, do_lower_case: bool = True) -> None:
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)

    def tokenize(self, text: str) -> List[str]:
        return [piece for word in self.basic_tokenizer.tokenize(text)
                for piece in self.wordpiece_tokenizer.word_pieces(word)]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> List[int]:
        return [self.vocab[token] for token in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> List[str]:
        return [self.inv_vocab[index] for index in ids]
