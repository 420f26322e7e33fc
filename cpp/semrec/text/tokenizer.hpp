// WordPiece tokenizer for BERT vocabularies, uncased or cased, giving the same ids as the
// Hugging Face fast tokenizer (BertNormalizer + BertPreTokenizer + WordPiece). No torch needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace semrec::text {

class WordPieceTokenizer {
 public:
  // vocab[i] is the token with id i (the lines of vocab.txt). The special tokens [CLS], [SEP],
  // [UNK] and [PAD] must be present. lowercase: the uncased normaliser (lowercased, accents
  // stripped); false: the cased one (text kept as written, BertNormalizer's lowercase=false
  // with strip_accents following it).
  explicit WordPieceTokenizer(std::vector<std::string> vocab, int max_chars_per_word = 100,
                              bool lowercase = true);

  // Ids of [CLS] pieces... [SEP] for UTF-8 text, with at most max_length ids in total (the
  // pieces are truncated, [CLS] and [SEP] always kept). Invalid UTF-8 bytes are dropped.
  // Special tokens typed in the text ("[SEP]") are ordinary text here: they split into
  // "[", "sep", "]" so user text can never inject structure.
  std::vector<std::int32_t> encode(std::string_view text, std::int64_t max_length) const;

  std::int32_t cls_id() const { return cls_; }
  std::int32_t sep_id() const { return sep_; }
  std::int32_t unk_id() const { return unk_; }
  std::int32_t pad_id() const { return pad_; }
  std::int64_t vocab_size() const { return static_cast<std::int64_t>(vocab_.size()); }

 private:
  void add_word(const std::u32string& word, std::vector<std::int32_t>& out,
                std::size_t limit) const;
  std::int32_t lookup(const std::string& piece) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, std::int32_t> ids_;
  int max_chars_per_word_;
  bool lowercase_;
  std::int32_t cls_ = -1, sep_ = -1, unk_ = -1, pad_ = -1;
};

}  // namespace semrec::text
