// The translation domain: corpus BLEU-4 against values worked out by hand, the generated
// corpus (deterministic, disjoint splits), corpus files and bad input, the trainable
// (overfits a tiny corpus, resumes bit-for-bit, a diverged model scores NaN), and the
// command refusing bad options.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "pbt/error.hpp"
#include "pbt/rng.hpp"
#include "pbt/trainable.hpp"
#include "trainables/torch/common.hpp"
#include "trainables/torch/translation/translation.hpp"

namespace fs = std::filesystem;
using pbt::mt::corpus_bleu;
using pbt::mt::Sentence;
using pbt::mt::tokenize;

namespace {

std::vector<Sentence> S(std::initializer_list<const char*> lines) {
  std::vector<Sentence> out;
  for (const char* l : lines) out.push_back(tokenize(l));
  return out;
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("pbt_mt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
}

std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const pbt::ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

}  // namespace

// ---------------------------------------------------------------------------------------
// BLEU: p_n clipped and summed over the corpus, BP = exp(1 - r/c) when c <= r.

TEST(TranslationBleu, IdenticalIsOne) {
  EXPECT_DOUBLE_EQ(corpus_bleu(S({"the cat sat on the mat"}), S({"the cat sat on the mat"})), 1.0);
}

TEST(TranslationBleu, WorkedExample) {
  // hyp "the cat sat on the mat", ref "the cat sat on a mat": p1 = 5/6 (one "the" clipped),
  // p2 = 3/5, p3 = 2/4, p4 = 1/3; c = r = 6, BP = 1: BLEU = (1/12)^(1/4).
  EXPECT_NEAR(corpus_bleu(S({"the cat sat on the mat"}), S({"the cat sat on a mat"})), std::pow(1.0 / 12, 0.25), 1e-12);
}

TEST(TranslationBleu, ClippingAndNoFourGramMatch) {
  // 4-grams of "the cat sat on the mat" vs "the cat is on the mat": none match -> 0 (no smoothing).
  EXPECT_EQ(corpus_bleu(S({"the cat sat on the mat"}), S({"the cat is on the mat"})), 0.0);
  // "the the the the" vs "the cat the dog": p1 clipped to 2/4, p2..p4 = 0 -> 0.
  EXPECT_EQ(corpus_bleu(S({"the the the the"}), S({"the cat the dog"})), 0.0);
}

TEST(TranslationBleu, ShortHypothesisPaysBrevityPenalty) {
  // Every n-gram matches (4/4, 3/3, 2/2, 1/1), c = 4, r = 6: BP = exp(1 - 6/4).
  EXPECT_NEAR(corpus_bleu(S({"the cat sat on"}), S({"the cat sat on the mat"})), std::exp(-0.5), 1e-12);
}

TEST(TranslationBleu, LongHypothesisHasNoPenaltyButLowerPrecision) {
  // p = 6/7, 5/6, 4/5, 3/4 (product 3/7), c = 7 > r = 6: BP = 1.
  EXPECT_NEAR(corpus_bleu(S({"the cat sat on the mat today"}), S({"the cat sat on the mat"})), std::pow(3.0 / 7, 0.25),
              1e-12);
}

TEST(TranslationBleu, CorpusSumsCountsNotSentenceScores) {
  // Sentence 2 alone scores 0 (no bigram match), yet the corpus counts are
  // p1 = 5/6, p2 = 3/4, p3 = 2/2, p4 = 1/1, c = r = 6: BLEU = (5/8)^(1/4).
  EXPECT_NEAR(corpus_bleu(S({"a b c d", "x y"}), S({"a b c d", "x z"})), std::pow(5.0 / 8, 0.25), 1e-12);
}

TEST(TranslationBleu, EmptyHypotheses) {
  // All empty: c = 0, defined as 0.
  EXPECT_EQ(corpus_bleu(S({""}), S({"a b c d"})), 0.0);
  EXPECT_EQ(corpus_bleu({}, {}), 0.0);
  // One empty among others: it adds to r only. c = 4, r = 6: BP = exp(1 - 6/4), p_n = 1.
  EXPECT_NEAR(corpus_bleu(S({"a b c d", ""}), S({"a b c d", "e f"})), std::exp(-0.5), 1e-12);
}

TEST(TranslationBleu, LowerOrders) {
  // Unigram BLEU of the no-4-gram example: p1 = 5/6, c = r = 6.
  EXPECT_NEAR(corpus_bleu(S({"the cat sat on the mat"}), S({"the cat is on the mat"}), 1), 5.0 / 6, 1e-12);
  // Bigram: sqrt(5/6 * 3/5).
  EXPECT_NEAR(corpus_bleu(S({"the cat sat on the mat"}), S({"the cat is on the mat"}), 2), std::sqrt(0.5), 1e-12);
  EXPECT_THROW(corpus_bleu(S({"a"}), S({"a"}), 5), std::invalid_argument);
}

TEST(TranslationBleu, DifferentCountsAreRefused) {
  EXPECT_THROW(corpus_bleu(S({"a"}), S({"a", "b"})), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
// The generated corpus.

TEST(TranslationCorpus, DeterministicForASeedAndSplitsDoNotOverlap) {
  pbt::mt::GeneratorOptions g;
  g.train_size = 3000;
  g.dev_size = 200;
  g.test_size = 200;
  const auto a = pbt::mt::generate_corpus(g);
  const auto b = pbt::mt::generate_corpus(g);
  ASSERT_EQ(a.train.size(), 3000u);
  ASSERT_EQ(a.dev.size(), 200u);
  ASSERT_EQ(a.test.size(), 200u);
  EXPECT_EQ(a.train.source, b.train.source);
  EXPECT_EQ(a.train.target, b.train.target);
  EXPECT_EQ(a.dev.target, b.dev.target);
  EXPECT_EQ(a.test.source, b.test.source);
  g.seed = 2;
  const auto c = pbt::mt::generate_corpus(g);
  EXPECT_NE(a.train.source, c.train.source);

  auto key = [](const Sentence& s) {
    std::string k;
    for (const auto& w : s) k += w + " ";
    return k;
  };
  std::set<std::string> train, dev;
  for (const auto& s : a.train.source) train.insert(key(s));
  for (const auto& s : a.dev.source) dev.insert(key(s));
  EXPECT_EQ(train.size(), a.train.size());
  EXPECT_EQ(dev.size(), a.dev.size());
  for (const auto& s : a.dev.source) EXPECT_FALSE(train.count(key(s))) << key(s);
  for (const auto& s : a.test.source) {
    EXPECT_FALSE(train.count(key(s))) << key(s);
    EXPECT_FALSE(dev.count(key(s))) << key(s);
  }
  // Varied lengths within the limit, a few hundred words, and a translation that is not a
  // word-for-word copy (lengths differ for some pairs).
  std::size_t longest = 0, shortest = 1000, differ = 0;
  std::set<std::string> words;
  for (std::size_t i = 0; i < a.train.size(); ++i) {
    longest = std::max(longest, a.train.source[i].size());
    shortest = std::min(shortest, a.train.source[i].size());
    EXPECT_LE(a.train.target[i].size(), g.max_length);
    differ += a.train.source[i].size() != a.train.target[i].size();
    for (const auto& w : a.train.source[i]) words.insert(w);
  }
  EXPECT_LE(longest, g.max_length);
  EXPECT_GE(longest, 20u);
  EXPECT_LE(shortest, 5u);
  EXPECT_GT(differ, a.train.size() / 5);
  EXPECT_GT(words.size(), 150u);
}

// ---------------------------------------------------------------------------------------
// Corpus files and options.

namespace {
nlohmann::json files_options(const fs::path& src, const fs::path& tgt) {
  return {{"corpus", "files"},
          {"source_file", src.string()},
          {"target_file", tgt.string()},
          {"dev_size", 2},
          {"test_size", 2}};
}
}  // namespace

TEST(TranslationFiles, ReadsAndSplits) {
  auto d = temp_dir("read");
  write_file(d / "src.txt", "a b\nc d e\n\nf\ng h\ni j\nk\n");
  write_file(d / "tgt.txt", "A B\nC D E\nX\nF\nG H\nI  J\nK\n");  // line 3: source empty, dropped
  const auto c = pbt::mt::read_corpus_files((d / "src.txt").string(), (d / "tgt.txt").string(), 0, 2, 2, 30, "s", "t");
  EXPECT_EQ(c.dev.size(), 2u);
  EXPECT_EQ(c.test.size(), 2u);
  EXPECT_EQ(c.train.size(), 2u);
  // Pairs stay aligned through the shuffle.
  for (const auto* split : {&c.train, &c.dev, &c.test})
    for (std::size_t i = 0; i < split->size(); ++i) {
      ASSERT_EQ(split->source[i].size(), split->target[i].size());
      for (std::size_t k = 0; k < split->source[i].size(); ++k) {
        std::string up = split->source[i][k];
        for (auto& ch : up) ch = static_cast<char>(std::toupper(ch));
        EXPECT_EQ(up, split->target[i][k]);
      }
    }
  fs::remove_all(d);
}

TEST(TranslationFiles, BadFilesAreRefusedNamingTheFile) {
  auto d = temp_dir("bad");
  write_file(d / "src.txt", "a b\nc d\ne f\ng h\ni j\n");
  write_file(d / "tgt.txt", "A B\nC D\nE F\nG H\n");
  write_file(d / "empty.txt", "\n  \n");
  auto msg = config_error(
      [&] { pbt::mt::check_options(files_options(d / "src.txt", d / "missing.txt"), "x.toml: trainable"); });
  EXPECT_NE(msg.find("x.toml: trainable.target_file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing.txt"), std::string::npos) << msg;
  msg =
      config_error([&] { pbt::mt::check_options(files_options(d / "empty.txt", d / "tgt.txt"), "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.source_file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("empty.txt' is empty"), std::string::npos) << msg;
  msg = config_error([&] { pbt::mt::check_options(files_options(d / "src.txt", d / "tgt.txt"), "x.toml: trainable"); });
  EXPECT_NE(msg.find("tgt.txt' has 4 lines but"), std::string::npos) << msg;
  EXPECT_NE(msg.find("src.txt' has 5"), std::string::npos) << msg;
  fs::remove_all(d);
}

TEST(TranslationOptions, BadOptionsAreRefusedNamingTheField) {
  auto msg = config_error([] { pbt::mt::check_options({{"layer_dropout", 1.0}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("x.toml: trainable.layer_dropout: must be in [0, 1)"), std::string::npos) << msg;
  msg = config_error([] { pbt::mt::check_options({{"relu_dropout", -0.1}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.relu_dropout"), std::string::npos) << msg;
  msg = config_error([] { pbt::mt::check_options({{"dropuot", 0.1}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.dropuot: unknown key"), std::string::npos) << msg;
  msg = config_error([] { pbt::mt::check_options({{"source_file", "a.txt"}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.source_file: only for corpus = \"files\""), std::string::npos) << msg;
  msg = config_error([] { pbt::mt::check_options({{"corpus", "files"}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.source_file: missing"), std::string::npos) << msg;
  msg = config_error([] { pbt::mt::check_options({{"d_model", 30}, {"heads", 4}}, "x.toml: trainable"); });
  EXPECT_NE(msg.find("trainable.heads: must divide d_model"), std::string::npos) << msg;
  EXPECT_NO_THROW(pbt::mt::check_options({{"attention_dropout", 0.0}, {"lr_schedule", "rsqrt"}}, "x.toml: trainable"));
}

// ---------------------------------------------------------------------------------------
// The trainable.

namespace {

// Eight pairs, each ten times: dev and test sentences also occur in train, so a model that
// memorises train translates them exactly. The target reverses the words and renames them.
struct TinyCorpus {
  fs::path dir;
  explicit TinyCorpus(const std::string& name) : dir(temp_dir(name)) {
    const char* src[] = {"a b c d e", "b c d", "e d c b a f", "f a", "c c a b", "d e f a b c", "a f", "b e d a"};
    std::string s, t;
    for (int rep = 0; rep < 10; ++rep)
      for (const char* line : src) {
        Sentence w = tokenize(line);
        s += std::string(line) + "\n";
        for (auto it = w.rbegin(); it != w.rend(); ++it) t += "X" + *it + (it + 1 == w.rend() ? "\n" : " ");
      }
    write_file(dir / "src.txt", s);
    write_file(dir / "tgt.txt", t);
  }
  ~TinyCorpus() { fs::remove_all(dir); }
  nlohmann::json options(double lr_dropout = 0.0) const {
    return {{"corpus", "files"},
            {"source_file", (dir / "src.txt").string()},
            {"target_file", (dir / "tgt.txt").string()},
            {"dev_size", 8},
            {"test_size", 8},
            {"d_model", 32},
            {"heads", 2},
            {"layers", 1},
            {"ffn", 64},
            {"batch_size", 16},
            {"label_smoothing", 0.0},
            {"attention_dropout", lr_dropout},
            {"layer_dropout", lr_dropout},
            {"relu_dropout", lr_dropout},
            {"embedding_dropout", lr_dropout}};
  }
};

std::unique_ptr<pbt::Trainable> make(const nlohmann::json& options, int member = 0, std::uint64_t seed = 7) {
  pbt::TrainableContext ctx;
  ctx.member = member;
  ctx.seed = seed;
  ctx.options = options;
  return pbt::mt::make_translation_trainable(ctx, "trainable");
}

std::string bytes_of(const pbt::Trainable& t) {
  pbt::CheckpointWriter w;
  t.save(w);
  return w.take();
}

std::string state_of(const pbt::Trainable& t) { return pbt::mt::training_state_bytes(t); }

}  // namespace

TEST(TranslationTrainable, TinyModelOverfitsTinyCorpus) {
  TinyCorpus c("overfit");
  auto t = make(c.options());
  t->apply({{"lr", 0.01}});
  double dev = 0;
  for (int i = 0; i < 8 && dev <= 90; ++i) {  // 50 steps at a time, at most 400
    t->step(50);
    auto s = t->eval();
    dev = s.value;
    EXPECT_TRUE(s.metrics.contains("test_bleu"));
    EXPECT_GT(s.metrics["train_tokens_per_s"].get<double>(), 0);
  }
  EXPECT_GT(dev, 90.0);
}

TEST(TranslationTrainable, SaveLoadResumesBitForBit) {
  TinyCorpus c("resume");
  const pbt::Hyperparams h = {{"lr", 0.003},
                              {"attention_dropout", 0.1},
                              {"layer_dropout", 0.2},
                              {"relu_dropout", 0.1},
                              {"embedding_dropout", 0.1}};
  auto a = make(c.options());
  a->apply(h);
  a->step(5);
  const std::string at5 = bytes_of(*a);
  a->step(5);  // dropout masks and batches drawn from the member's stream
  const std::string a10 = state_of(*a);

  auto b = make(c.options());  // a fresh trainable for the same member, as after a restart
  pbt::CheckpointReader r(at5);
  b->load(r);
  b->apply(h);
  b->step(5);
  EXPECT_TRUE(state_of(*b) == a10) << "weights, optimizer or random stream differ after the resume";
  EXPECT_EQ(a->eval().value, b->eval().value);

  // Without the load, the same member trains differently (the test can fail).
  auto fresh = make(c.options(), 0, 8);
  fresh->apply(h);
  fresh->step(10);
  EXPECT_FALSE(state_of(*fresh) == a10);

  // Another member that copies this checkpoint (exploit) is told so by copied(), with a
  // seed of its own: it keeps the model and optimizer but draws its own batches and
  // dropout masks. Told nothing, a load is a resume, whoever loads it.
  auto copy = [&](int member, bool told) {
    auto t = make(c.options(), member, 99);
    pbt::CheckpointReader r2(at5);
    t->load(r2);
    if (told) t->copied({0, 5, pbt::derive_seed(3, member, 5, pbt::kCopy)});
    t->apply(h);
    t->step(5);
    return state_of(*t);
  };
  const std::string one = copy(1, true);
  EXPECT_FALSE(one == a10) << "the copy replayed the donor's batches and masks";
  EXPECT_FALSE(one == copy(2, true)) << "two copies of one donor with the same h stayed one model";
  EXPECT_TRUE(one == copy(1, true)) << "the same member and seed must give the same model";
  EXPECT_TRUE(copy(1, false) == a10);
}

TEST(TranslationTrainable, BadHyperparametersAreRefusedAndDivergenceScoresNaN) {
  TinyCorpus c("diverge");
  auto t = make(c.options());
  auto msg = config_error([&] { t->apply({{"relu_dropout", 1.0}}); });
  EXPECT_NE(msg.find("relu_dropout"), std::string::npos) << msg;
  msg = config_error([&] { t->apply({{"learning_rate", 0.1}}); });
  EXPECT_NE(msg.find("learning_rate"), std::string::npos) << msg;
  // A learning rate far too large makes the weights non-finite: scored NaN, no exception.
  t->apply({{"lr", 1e30}});
  EXPECT_NO_THROW(t->step(20));
  EXPECT_TRUE(std::isnan(t->eval().value));
  EXPECT_NO_THROW(t->step(5));
}

// `pbt create CONFIG --run DIR/run`: its exit code and everything it printed.
struct Created {
  int code = -1;
  std::string out;
};
Created pbt_create(const fs::path& d, const std::string& config) {
  const std::string cmd = std::string(PBT_BINARY) + " create " + config + " --run " + (d / "run").string() + " > " +
                          (d / "out.txt").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  Created c;
  c.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(d / "out.txt");
  c.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return c;
}

const char* const kCommandConfigHead = "name = \"bad\"\npopulation = 2\n[trainable]\nkind = \"translation\"\n";
const char* const kCommandConfigTail =
    "[budget]\nsteps = 10\n[ready]\ninterval = 5\n[exploit]\nstrategy = \"truncation\"\n"
    "[explore]\nstrategy = \"perturb\"\n";

TEST(TranslationCommand, RefusesBadDropoutBeforeRunning) {
  auto d = temp_dir("cmd");
  write_file(d / "bad.toml", std::string(kCommandConfigHead) + "attention_dropout = 1.5\n" + kCommandConfigTail +
                                 "[space.lr]\ntype = \"float\"\nlow = 0.001\nhigh = 0.01\n");
  const Created c = pbt_create(d, (d / "bad.toml").string());
  EXPECT_EQ(c.code, 2);
  EXPECT_NE(c.out.find("trainable.attention_dropout"), std::string::npos) << c.out;
  fs::remove_all(d);
}

// A [space] bound the trainable cannot take (a dropout of 1) is refused before anything runs.
TEST(TranslationCommand, RefusesADropoutSpaceReachingOne) {
  auto d = temp_dir("space");
  write_file(d / "bad.toml", std::string(kCommandConfigHead) + kCommandConfigTail +
                                 "[space.relu_dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n");
  const Created c = pbt_create(d, (d / "bad.toml").string());
  EXPECT_EQ(c.code, 2);
  EXPECT_NE(c.out.find("bad.toml: space (every upper bound)"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("relu_dropout"), std::string::npos) << c.out;
  EXPECT_FALSE(fs::exists(d / "run" / "store.db")) << "nothing may be created";
  fs::remove_all(d);
}

TEST(TranslationCommand, ExampleConfigIsAccepted) {
  auto d = temp_dir("example");
  const Created c = pbt_create(d, std::string(PBT_SOURCE_DIR) + "/examples/translation.toml");
  EXPECT_EQ(c.code, 0) << c.out;
  fs::remove_all(d);
}

// Not in CI: times training steps and BLEU for a model size, to size the benchmark.
//   MT_STEPS=400 MT_D=64 ./pbt_torch_translation_tests --gtest_also_run_disabled_tests --gtest_filter=*Probe
TEST(TranslationTrainable, DISABLED_Probe) {
  auto env = [](const char* k, double def) {
    const char* v = std::getenv(k);
    return v ? std::atof(v) : def;
  };
  nlohmann::json o = {
      {"d_model", static_cast<int>(env("MT_D", 64))},           {"ffn", static_cast<int>(env("MT_FFN", 256))},
      {"layers", static_cast<int>(env("MT_LAYERS", 2))},        {"batch_size", static_cast<int>(env("MT_BATCH", 32))},
      {"train_size", static_cast<int>(env("MT_TRAIN", 20000))}, {"max_depth", static_cast<int>(env("MT_DEPTH", 2))}};
  auto t = make(o);
  const double drop = env("MT_DROP", 0.1);
  t->apply({{"lr", env("MT_LR", 2e-3)},
            {"attention_dropout", drop},
            {"layer_dropout", drop},
            {"relu_dropout", drop},
            {"embedding_dropout", drop}});
  const int steps = static_cast<int>(env("MT_STEPS", 400)), every = static_cast<int>(env("MT_EVERY", 200));
  for (int s = 0; s < steps; s += every) {
    auto t0 = std::chrono::steady_clock::now();
    t->step(every);
    auto t1 = std::chrono::steady_clock::now();
    auto sc = t->eval();
    auto t2 = std::chrono::steady_clock::now();
    std::printf("step %d: %.1f ms/step, eval %.2f s, %s\n", s + every,
                std::chrono::duration<double, std::milli>(t1 - t0).count() / every,
                std::chrono::duration<double>(t2 - t1).count(), sc.metrics.dump().c_str());
    std::fflush(stdout);
  }
}
