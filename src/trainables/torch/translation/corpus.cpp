// The parallel corpora (generated or read from files) and corpus BLEU-4. No LibTorch here.
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_set>

#include "pbt/error.hpp"
#include "trainables/torch/translation/translation.hpp"

namespace pbt::mt {

Sentence tokenize(const std::string& line) {
  Sentence out;
  std::string cur;
  for (char ch : line) {
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
      if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// ---------------------------------------------------------------------------------------
// The generated language pair.
namespace {

// Our own draws from mt19937_64 (whose sequence the standard fixes), so a seed gives the
// same corpus with every standard library.
struct Draw {
  std::mt19937_64 g;
  explicit Draw(std::uint64_t seed) : g(seed) {}
  double uniform() { return static_cast<double>(g() >> 11) * 0x1.0p-53; }
  bool coin(double p) { return uniform() < p; }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * n); }
};

// A word of `syllables` syllables from the given onsets and vowels, unused so far.
std::string new_word(Draw& d, const std::vector<std::string>& onsets, const std::vector<std::string>& vowels,
                     int syllables, std::unordered_set<std::string>& used, const std::vector<std::string>& suffixes) {
  for (int attempt = 0; attempt < 100000; ++attempt) {
    std::string w;
    for (int s = 0; s < syllables; ++s) w += onsets[d.below(onsets.size())] + vowels[d.below(vowels.size())];
    // Every inflected form must be new too, so that a token names one form of one word.
    bool ok = true;
    for (const auto& suf : suffixes) ok = ok && !used.count(w + suf);
    if (!ok) continue;
    for (const auto& suf : suffixes) used.insert(w + suf);
    return w;
  }
  throw std::runtime_error("translation corpus: ran out of distinct words");
}

// Zipf-like draw over a category: rank i has weight 1/(i+1), so some words are rare.
struct Zipf {
  std::vector<double> cum;
  explicit Zipf(std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) cum.push_back(s += 1.0 / (i + 1));
    for (auto& c : cum) c /= s;
  }
  std::size_t operator()(Draw& d) const {
    const double u = d.uniform();
    return std::min<std::size_t>(std::upper_bound(cum.begin(), cum.end(), u) - cum.begin(), cum.size() - 1);
  }
};

struct Lexicon {
  // Source (English-like).
  std::vector<std::string> noun, vt, vi, adj, adv, prep;
  // Target.
  std::vector<std::string> t_noun, t_vt, t_vi, t_adj, t_adv, t_prep;
  std::vector<int> gender;                             // per noun: 0, 1, 2
  std::vector<std::string> t_particle;                 // per transitive verb: "" or a separable particle
  std::vector<std::string> t_adv_marker;               // per adverb: the first of its two target words
  std::string t_det[3][3][2];                          // [kind: the, a/some, this/these][gender][number]
  std::string t_rel[3][2];                             // relative pronoun [gender][number]
  std::vector<std::array<std::string, 3>> t_contract;  // per preposition, with "the" singular, per gender
  std::string t_and, t_but;
};

const std::vector<std::string> kSrcOnsets = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w"};
const std::vector<std::string> kSrcVowels = {"a", "e", "i", "o", "u"};
const std::vector<std::string> kTgtOnsets = {"c", "h", "j", "q", "x", "z", "ts", "kh"};
const std::vector<std::string> kTgtVowels = {"a", "e", "i", "o", "u", "y", "ae", "ou"};
const std::vector<std::string> kAdjSuffix = {"a", "o", "e", "ai", "oi", "ei"};  // [gender * 2 + number]

Lexicon make_lexicon(Draw& d) {
  Lexicon L;
  std::unordered_set<std::string> src_used = {"the", "a", "some", "this", "these", "that", "and", "but"};
  std::unordered_set<std::string> tgt_used;
  auto src = [&](int syl, std::vector<std::string> suf) {
    return new_word(d, kSrcOnsets, kSrcVowels, syl, src_used, suf);
  };
  auto tgt = [&](int syl, std::vector<std::string> suf) {
    return new_word(d, kTgtOnsets, kTgtVowels, syl, tgt_used, suf);
  };
  const int n_noun = 60, n_vt = 30, n_vi = 15, n_adj = 30, n_adv = 12, n_prep = 8;
  for (int i = 0; i < n_noun; ++i) {
    L.noun.push_back(src(2, {"", "s"}));
    L.t_noun.push_back(tgt(2, {"", "en"}));
    L.gender.push_back(static_cast<int>(d.below(3)));
  }
  for (int i = 0; i < n_vt; ++i) {
    L.vt.push_back(src(2, {"", "s"}));
    L.t_vt.push_back(tgt(2, {"t", "n"}));
  }
  // A third of the transitive verbs take a separable particle in the target (one word -> two).
  std::vector<std::string> particles;
  for (int i = 0; i < 4; ++i) particles.push_back(tgt(1, {""}));
  for (int i = 0; i < n_vt; ++i) L.t_particle.push_back(i % 3 == 1 ? particles[d.below(particles.size())] : "");
  for (int i = 0; i < n_vi; ++i) {
    L.vi.push_back(src(2, {"", "s"}));
    L.t_vi.push_back(tgt(2, {"t", "n"}));
  }
  for (int i = 0; i < n_adj; ++i) {
    L.adj.push_back(src(2, {""}));
    L.t_adj.push_back(tgt(1, kAdjSuffix));
  }
  // Adverbs: one word -> a marker word (one of three) and a stem.
  std::vector<std::string> markers;
  for (int i = 0; i < 3; ++i) markers.push_back(tgt(1, {""}));
  for (int i = 0; i < n_adv; ++i) {
    L.adv.push_back(src(2, {"ly"}) + "ly");
    L.t_adv.push_back(tgt(2, {""}));
    L.t_adv_marker.push_back(markers[i % 3]);
  }
  for (int i = 0; i < n_prep; ++i) {
    L.prep.push_back(src(1, {""}));
    L.t_prep.push_back(tgt(1, {""}));
    std::array<std::string, 3> c;
    for (int g = 0; g < 3; ++g) c[g] = tgt(1, {"m"}) + "m";  // "preposition + the" as one word
    L.t_contract.push_back(c);
  }
  for (int k = 0; k < 3; ++k)
    for (int g = 0; g < 3; ++g)
      for (int n = 0; n < 2; ++n) L.t_det[k][g][n] = tgt(1, {""});
  for (int g = 0; g < 3; ++g)
    for (int n = 0; n < 2; ++n) L.t_rel[g][n] = tgt(1, {"r"}) + "r";
  L.t_and = tgt(1, {""});
  L.t_but = tgt(1, {""});
  return L;
}

struct Pair {
  Sentence src, tgt;
};

void append(Sentence& a, const Sentence& b) { a.insert(a.end(), b.begin(), b.end()); }

class Grammar {
 public:
  Grammar(const Lexicon& L, Draw& d, int max_depth)
      : L_(L),
        d_(d),
        max_depth_(max_depth),
        noun_(L.noun.size()),
        vt_(L.vt.size()),
        vi_(L.vi.size()),
        adj_(L.adj.size()),
        adv_(L.adv.size()),
        prep_(L.prep.size()) {}

  Pair sentence() {
    Pair p = clause(0);
    if (d_.coin(0.15)) {
      const bool but = d_.coin(0.5);
      Pair q = clause(0);
      p.src.push_back(but ? "but" : "and");
      p.tgt.push_back(but ? L_.t_but : L_.t_and);
      append(p.src, q.src);
      append(p.tgt, q.tgt);
    }
    return p;
  }

 private:
  struct NP {
    Sentence src;
    std::string t_det;  // kept apart so that a preposition can absorb it
    Sentence t_rest;
    int kind, gender, number;
  };

  NP np(int depth) {
    NP o;
    const std::size_t n = noun_(d_);
    o.gender = L_.gender[n];
    o.number = d_.coin(0.3) ? 1 : 0;
    const double u = d_.uniform();
    o.kind = u < 0.5 ? 0 : (u < 0.8 ? 1 : 2);
    static const char* kSrcDet[3][2] = {{"the", "the"}, {"a", "some"}, {"this", "these"}};
    o.src.push_back(kSrcDet[o.kind][o.number]);
    o.t_det = L_.t_det[o.kind][o.gender][o.number];
    const double a = d_.uniform();
    const int n_adj = a < 0.5 ? 0 : (a < 0.85 ? 1 : 2);
    std::vector<std::size_t> adjs;
    while (static_cast<int>(adjs.size()) < n_adj) {
      const std::size_t j = adj_(d_);
      if (std::find(adjs.begin(), adjs.end(), j) == adjs.end()) adjs.push_back(j);
    }
    for (auto j : adjs) o.src.push_back(L_.adj[j]);
    o.src.push_back(L_.noun[n] + (o.number ? "s" : ""));
    // Target: determiner, noun, then the adjectives, each agreeing with the noun.
    o.t_rest.push_back(L_.t_noun[n] + (o.number ? "en" : ""));
    for (auto j : adjs) o.t_rest.push_back(L_.t_adj[j] + kAdjSuffix[o.gender * 2 + o.number]);
    if (depth < max_depth_ && d_.coin(0.25)) {
      const std::size_t p = prep_(d_);
      NP inner = np(depth + 1);
      o.src.push_back(L_.prep[p]);
      append(o.src, inner.src);
      if (inner.kind == 0 && inner.number == 0) {
        o.t_rest.push_back(L_.t_contract[p][inner.gender]);  // two words -> one
      } else {
        o.t_rest.push_back(L_.t_prep[p]);
        o.t_rest.push_back(inner.t_det);
      }
      append(o.t_rest, inner.t_rest);
    }
    if (depth < max_depth_ && d_.coin(0.2)) {
      Pair vp = verb_phrase(depth + 1, o.number);
      o.src.push_back("that");
      append(o.src, vp.src);
      o.t_rest.push_back(L_.t_rel[o.gender][o.number]);
      append(o.t_rest, vp.tgt);
    }
    return o;
  }

  static Sentence target(const NP& n) {
    Sentence s{n.t_det};
    append(s, n.t_rest);
    return s;
  }

  // Source: verb [object] [adverb]. Target: [object] [adverb marker + stem] [particle] verb,
  // the verb marked for the subject's number: verb-final in main and relative clauses alike.
  Pair verb_phrase(int depth, int subject_number) {
    Pair p;
    const bool transitive = d_.coin(0.7);
    const bool with_adverb = d_.coin(0.3);
    const std::size_t adv = with_adverb ? adv_(d_) : 0;
    if (transitive) {
      const std::size_t v = vt_(d_);
      NP obj = np(depth);
      p.src.push_back(L_.vt[v] + (subject_number ? "" : "s"));
      append(p.src, obj.src);
      p.tgt = target(obj);
      if (with_adverb) {
        p.src.push_back(L_.adv[adv]);
        p.tgt.push_back(L_.t_adv_marker[adv]);
        p.tgt.push_back(L_.t_adv[adv]);
      }
      if (!L_.t_particle[v].empty()) p.tgt.push_back(L_.t_particle[v]);
      p.tgt.push_back(L_.t_vt[v] + (subject_number ? "n" : "t"));
    } else {
      const std::size_t v = vi_(d_);
      p.src.push_back(L_.vi[v] + (subject_number ? "" : "s"));
      if (with_adverb) {
        p.src.push_back(L_.adv[adv]);
        p.tgt.push_back(L_.t_adv_marker[adv]);
        p.tgt.push_back(L_.t_adv[adv]);
      }
      p.tgt.push_back(L_.t_vi[v] + (subject_number ? "n" : "t"));
    }
    return p;
  }

  Pair clause(int depth) {
    NP subj = np(depth);
    Pair vp = verb_phrase(depth, subj.number);
    Pair p;
    p.src = subj.src;
    append(p.src, vp.src);
    p.tgt = target(subj);
    append(p.tgt, vp.tgt);
    return p;
  }

  const Lexicon& L_;
  Draw& d_;
  int max_depth_;
  Zipf noun_, vt_, vi_, adj_, adv_, prep_;
};

std::string join(const Sentence& s) {
  std::string out;
  for (const auto& w : s) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

Corpus generate_corpus(const GeneratorOptions& o) {
  Draw d(o.seed);
  const Lexicon L = make_lexicon(d);
  Grammar g(L, d, o.max_depth);
  Corpus c;
  std::unordered_set<std::string> seen;  // no source sentence in two splits (nor twice in one)
  const std::size_t want = o.train_size + o.dev_size + o.test_size;
  std::size_t made = 0;
  for (std::size_t attempts = 0; made < want; ++attempts) {
    if (attempts > 50 * want + 100000)
      throw std::runtime_error("translation corpus: the grammar gave only " + std::to_string(made) +
                               " distinct sentences of at most " + std::to_string(o.max_length) +
                               " tokens; ask for fewer or allow longer ones");
    Pair p = g.sentence();
    if (p.src.size() > o.max_length || p.tgt.size() > o.max_length) continue;
    if (!seen.insert(join(p.src)).second) continue;
    Split& s = made < o.dev_size ? c.dev : (made < o.dev_size + o.test_size ? c.test : c.train);
    s.source.push_back(std::move(p.src));
    s.target.push_back(std::move(p.tgt));
    ++made;
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// Two plain-text files.
namespace {
std::vector<std::string> read_lines(const std::string& path, const std::string& where) {
  std::ifstream in(path);
  if (!in) throw ConfigError(where, "cannot open '" + path + "'");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  bool any = false;
  for (const auto& l : lines) any = any || !tokenize(l).empty();
  if (!any) throw ConfigError(where, "'" + path + "' is empty (no sentence in it)");
  return lines;
}
}  // namespace

Corpus read_corpus_files(const std::string& source_path, const std::string& target_path, std::uint64_t seed,
                         std::size_t dev_size, std::size_t test_size, std::size_t max_length,
                         const std::string& where_source, const std::string& where_target) {
  const auto src = read_lines(source_path, where_source);
  const auto tgt = read_lines(target_path, where_target);
  if (src.size() != tgt.size())
    throw ConfigError(where_target, "'" + target_path + "' has " + std::to_string(tgt.size()) + " lines but '" +
                                        source_path + "' has " + std::to_string(src.size()) +
                                        " (one sentence per line, line i translates line i)");
  std::vector<Pair> pairs;
  for (std::size_t i = 0; i < src.size(); ++i) {
    Pair p{tokenize(src[i]), tokenize(tgt[i])};
    if (p.src.empty() || p.tgt.empty() || p.src.size() > max_length || p.tgt.size() > max_length) continue;
    pairs.push_back(std::move(p));
  }
  if (pairs.size() < dev_size + test_size + 1)
    throw ConfigError(where_source, "'" + source_path + "' and '" + target_path + "' give " +
                                        std::to_string(pairs.size()) + " usable pairs (non-empty, at most " +
                                        std::to_string(max_length) + " tokens); dev_size + test_size + 1 = " +
                                        std::to_string(dev_size + test_size + 1) + " are needed");
  Draw d(seed);
  for (std::size_t i = pairs.size(); i > 1; --i) std::swap(pairs[i - 1], pairs[d.below(i)]);  // Fisher-Yates
  Corpus c;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    Split& s = i < dev_size ? c.dev : (i < dev_size + test_size ? c.test : c.train);
    s.source.push_back(std::move(pairs[i].src));
    s.target.push_back(std::move(pairs[i].tgt));
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// Corpus BLEU-4.
double corpus_bleu(const std::vector<Sentence>& hypotheses, const std::vector<Sentence>& references, int max_order) {
  if (max_order < 1 || max_order > 4) throw std::invalid_argument("corpus_bleu: max_order must be 1..4");
  if (hypotheses.size() != references.size())
    throw std::invalid_argument("corpus_bleu: " + std::to_string(hypotheses.size()) + " hypotheses but " +
                                std::to_string(references.size()) + " references");
  double matches[4] = {0, 0, 0, 0}, totals[4] = {0, 0, 0, 0};
  double c = 0, r = 0;
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    const Sentence& h = hypotheses[i];
    const Sentence& ref = references[i];
    c += h.size();
    r += ref.size();
    for (std::size_t n = 1; n <= static_cast<std::size_t>(max_order); ++n) {
      if (h.size() < n) continue;
      std::map<std::vector<std::string>, int> ref_counts;
      if (ref.size() >= n)
        for (std::size_t k = 0; k + n <= ref.size(); ++k) ref_counts[Sentence(ref.begin() + k, ref.begin() + k + n)]++;
      std::map<std::vector<std::string>, int> hyp_counts;
      for (std::size_t k = 0; k + n <= h.size(); ++k) hyp_counts[Sentence(h.begin() + k, h.begin() + k + n)]++;
      for (const auto& [gram, cnt] : hyp_counts) {
        auto it = ref_counts.find(gram);
        if (it != ref_counts.end()) matches[n - 1] += std::min(cnt, it->second);  // clipped
        totals[n - 1] += cnt;
      }
    }
  }
  if (c == 0) return 0.0;
  double log_sum = 0;
  for (int n = 0; n < max_order; ++n) {
    if (matches[n] == 0) return 0.0;  // includes totals == 0: no n-gram of that order at all
    log_sum += std::log(matches[n] / totals[n]);
  }
  const double bp = c > r ? 1.0 : std::exp(1.0 - r / c);
  return bp * std::exp(log_sum / max_order);
}

}  // namespace pbt::mt
