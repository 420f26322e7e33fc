#include "semrec/text/tokenizer.hpp"

#include <algorithm>
#include <stdexcept>

namespace semrec::text {
namespace {

struct UnicodeRange {
  char32_t start;
  std::uint8_t flags;
  std::uint32_t offset;
  std::uint32_t length;
};

#include "unicode_tables.inc"

constexpr std::uint8_t kRemove = 1, kSpace = 2, kCjk = 4, kPunct = 8, kMapped = 16;

const UnicodeRange& range_of(char32_t c) {
  const auto* end = std::end(kUnicodeRanges);
  const auto* it = std::upper_bound(std::begin(kUnicodeRanges), end, c,
                                    [](char32_t v, const UnicodeRange& r) { return v < r.start; });
  return *(it - 1);
}

// Decodes one UTF-8 sequence at text[i]; returns U+FFFD (removed later) for invalid bytes.
char32_t next_codepoint(std::string_view text, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(text[i++]);
  if (b0 < 0x80) return b0;
  int extra = b0 >= 0xF0 ? 3 : b0 >= 0xE0 ? 2 : b0 >= 0xC0 ? 1 : -1;
  if (extra < 0 || b0 > 0xF4) return 0xFFFD;
  char32_t cp = b0 & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    if (i >= text.size()) return 0xFFFD;
    const auto b = static_cast<unsigned char>(text[i]);
    if ((b & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (b & 0x3F);
    ++i;
  }
  return cp > 0x10FFFF ? 0xFFFD : cp;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool is_punct(char32_t c) { return (range_of(c).flags & kPunct) != 0; }

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, int max_chars_per_word,
                                       bool lowercase)
    : vocab_(std::move(vocab)), max_chars_per_word_(max_chars_per_word), lowercase_(lowercase) {
  ids_.reserve(vocab_.size() * 2);
  for (std::size_t i = 0; i < vocab_.size(); ++i) {
    ids_.emplace(vocab_[i], static_cast<std::int32_t>(i));  // first occurrence wins
  }
  auto special = [&](const char* name) {
    auto it = ids_.find(name);
    if (it == ids_.end()) throw std::invalid_argument(std::string("vocab lacks ") + name);
    return it->second;
  };
  cls_ = special("[CLS]");
  sep_ = special("[SEP]");
  unk_ = special("[UNK]");
  pad_ = special("[PAD]");
}

std::int32_t WordPieceTokenizer::lookup(const std::string& piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

// Greedy longest-match-first WordPiece; a word with an unmatched part becomes one [UNK].
void WordPieceTokenizer::add_word(const std::u32string& word, std::vector<std::int32_t>& out,
                                  std::size_t limit) const {
  if (word.empty() || out.size() >= limit) return;
  if (static_cast<int>(word.size()) > max_chars_per_word_) {
    out.push_back(unk_);
    return;
  }
  const std::size_t mark = out.size();
  std::string piece;
  std::size_t start = 0;
  while (start < word.size()) {
    std::size_t end = word.size();
    std::int32_t found = -1;
    while (start < end) {
      piece.clear();
      if (start > 0) piece = "##";
      for (std::size_t k = start; k < end; ++k) append_utf8(piece, word[k]);
      found = lookup(piece);
      if (found >= 0) break;
      --end;
    }
    if (found < 0) {
      out.resize(mark);
      out.push_back(unk_);
      return;
    }
    out.push_back(found);
    start = end;
  }
  if (out.size() > limit) out.resize(limit);
}

std::vector<std::int32_t> WordPieceTokenizer::encode(std::string_view text,
                                                     std::int64_t max_length) const {
  if (max_length < 2) throw std::invalid_argument("max_length must be at least 2");
  const auto limit = static_cast<std::size_t>(max_length - 1);  // room for [SEP]
  std::vector<std::int32_t> out{cls_};
  std::u32string word;
  auto flush = [&] {
    add_word(word, out, limit);
    word.clear();
  };
  // Normalise and pre-tokenise in one pass: the pieces of a word are known as soon as a
  // boundary (space or punctuation) is seen, and reading stops once max_length is reached.
  auto emit = [&](char32_t c) {
    if (c == U' ') {
      flush();
    } else if (is_punct(c)) {
      flush();
      word.push_back(c);
      flush();
    } else {
      word.push_back(c);
    }
  };
  std::size_t i = 0;
  while (i < text.size() && out.size() < limit) {
    const char32_t c = next_codepoint(text, i);
    const UnicodeRange& r = range_of(c);
    if (r.flags & kRemove) continue;
    if (r.flags & kSpace) {
      flush();
      continue;
    }
    if (r.flags & kCjk) flush();
    if ((r.flags & kMapped) && lowercase_) {  // cased: no lowercasing, no accent stripping
      for (std::uint32_t k = 0; k < r.length; ++k) emit(kUnicodePool[r.offset + k]);
    } else {
      emit(c);
    }
    if (r.flags & kCjk) flush();
  }
  flush();
  if (out.size() > limit) out.resize(limit);
  out.push_back(sep_);
  return out;
}

}  // namespace semrec::text
