#pragma once
// Machine translation under PBT (the paper's second domain): a small Transformer
// encoder-decoder trained on a parallel corpus, scored by corpus BLEU-4 on a held-out dev
// set (selection), with BLEU on a separate test set reported beside it.
//
// The corpus and BLEU parts do not need LibTorch; the trainable does (translation.cpp).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pbt/trainable.hpp"

namespace pbt::mt {

using Sentence = std::vector<std::string>;  // whitespace tokens

struct Split {
  std::vector<Sentence> source;
  std::vector<Sentence> target;
  std::size_t size() const { return source.size(); }
};

struct Corpus {
  Split train, dev, test;
};

// The generated language pair (see docs/translation.md): an English-like source grammar
// with nested noun phrases (prepositional phrases, relative clauses) and coordinated clauses;
// a target language that is verb-final (also inside relative clauses), puts adjectives after
// the noun, marks gender and number on determiners, adjectives and relative pronouns, marks
// the subject's number on the verb, uses its own vocabulary, translates adverbs and some verbs
// with two words, and contracts "preposition + the" (singular) into one word.
struct GeneratorOptions {
  std::uint64_t seed = 1;
  std::size_t train_size = 20000;
  std::size_t dev_size = 200;
  std::size_t test_size = 200;
  std::size_t max_length = 30;  // tokens per side, both languages
  int max_depth = 2;            // nesting of prepositional phrases / relative clauses
};

// Deterministic for a seed (own integer arithmetic, no std distributions). No source
// sentence occurs in two splits. Throws std::runtime_error when the grammar cannot give
// that many distinct sentences.
Corpus generate_corpus(const GeneratorOptions& o);

// A parallel corpus from two plain-text files, one sentence per line, whitespace-tokenized.
// Lines are shuffled by `seed`; the first dev_size pairs are dev, the next test_size test,
// the rest train. Pairs with an empty side or longer than max_length (either side) are
// dropped. Missing or empty files, different line counts, or too few pairs for the splits
// throw ConfigError naming `where_source` / `where_target` and the file.
Corpus read_corpus_files(const std::string& source_path, const std::string& target_path, std::uint64_t seed,
                         std::size_t dev_size, std::size_t test_size, std::size_t max_length,
                         const std::string& where_source, const std::string& where_target);

// Corpus BLEU-4 (Papineni et al. 2002), single reference, no smoothing, in [0, 1]:
// clipped n-gram counts and hypothesis n-gram counts summed over the corpus (n = 1..4),
// BLEU = BP * exp(mean_n log p_n), BP = 1 if c > r else exp(1 - r/c), c and r the total
// hypothesis and reference lengths. 0 when any p_n is 0 (no 4-gram match gives 0) and when
// the hypotheses are all empty (c = 0: no precision and BP -> 0). Throws
// std::invalid_argument when the two lists differ in length.
// `max_order` < 4 gives the same definition with n = 1..max_order (used only to break ties).
double corpus_bleu(const std::vector<Sentence>& hypotheses, const std::vector<Sentence>& references, int max_order = 4);

// Splits on spaces and tabs.
Sentence tokenize(const std::string& line);

// Checks the [trainable] options of kind "translation" (throws ConfigError naming the field
// or file). Reading the corpus files is part of the check.
// What apply() checks, without a model: lets a config's [space] be refused up front.
void check_hyperparams(const Hyperparams& h);
void check_options(const nlohmann::json& options, const std::string& where);

// The trainable (LibTorch). `where` names the options table in errors.
std::unique_ptr<Trainable> make_translation_trainable(const TrainableContext& ctx, const std::string& where);

// The raw bytes of a translation trainable's weights, Adam moments and step counts, random
// stream and step (for tests: two trainables in the same training state give equal bytes;
// a checkpoint's own bytes are not comparable, its archive names differ run to run).
std::string training_state_bytes(const Trainable& t);

}  // namespace pbt::mt
