// The translation trainable: a small pre-norm Transformer encoder-decoder (Vaswani et al.
// 2017, as tensor2tensor runs it) built from LibTorch's MultiheadAttention, Linear,
// LayerNorm and Embedding, trained with teacher forcing and label smoothing, scored by
// corpus BLEU-4 of greedy translations of the dev set.
//
// Why not torch::nn::Transformer: its layers take one dropout for everything, and the paper
// evolves attention, layer (residual) and ReLU dropout separately. Here:
//   attention_dropout  on the attention weights (MultiheadAttention's own dropout, set in place)
//   layer_dropout      on every sub-layer's output before it is added to the residual stream
//   relu_dropout       on the feed-forward hidden units after the ReLU
//   embedding_dropout  on the scaled embeddings + positions (tensor2tensor ties it to the
//                      layer dropout; here it is a fourth, separate value)
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "pbt/options.hpp"
#include "trainables/torch/common.hpp"
#include "trainables/torch/translation/translation.hpp"

namespace pbt::mt {

namespace {

constexpr std::uint32_t kMagic = 0x3154544d;  // "MTT1"
constexpr std::int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;
constexpr std::int64_t kMaxPositions = 512;

const std::set<std::string> kHyperparameters = {"lr", "attention_dropout", "layer_dropout", "relu_dropout",
                                                "embedding_dropout"};

struct Dropouts {
  double attention = 0.1, layer = 0.1, relu = 0.1, embedding = 0.1;
};

struct MtOptions {
  // Corpus.
  std::string corpus = "generated";
  GeneratorOptions gen;
  std::string source_file, target_file;
  // Model.
  std::int64_t d_model = 64, heads = 4, layers = 2, ffn = 256;
  // Training.
  std::int64_t batch_size = 32;
  double label_smoothing = 0.1;
  std::string lr_schedule = "constant";
  std::int64_t warmup_steps = 0;
  // Values used when h does not name them.
  double lr = 1e-3;
  Dropouts dropout;
  std::string device = "cpu";
  bool report_test = true;  // test BLEU in every eval's metrics (costs a second decode)
  // The key that identifies the corpus (for the per-process cache).
  std::string corpus_key;
};

double dropout_option(Options& o, const std::string& key, double def) {
  const double p = o.number(key, def);
  if (!(p >= 0 && p < 1)) throw ConfigError(o.path(key), "must be in [0, 1), got " + std::to_string(p));
  return p;
}

std::int64_t int_in(Options& o, const std::string& key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
  const std::int64_t v = o.integer(key, def);
  if (v < lo || v > hi)
    throw ConfigError(o.path(key),
                      "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

MtOptions read_options(const nlohmann::json& j, const std::string& where, bool read_files) {
  Options o(j, where);
  MtOptions m;
  m.corpus = o.string("corpus", "generated");
  if (m.corpus != "generated" && m.corpus != "files")
    throw ConfigError(o.path("corpus"), "unknown corpus '" + m.corpus + "' (known: generated, files)");
  const bool files = m.corpus == "files";
  m.gen.seed = static_cast<std::uint64_t>(int_in(o, "corpus_seed", 1, 0, INT64_MAX));
  m.gen.dev_size = static_cast<std::size_t>(int_in(o, "dev_size", 200, 1, 100000));
  m.gen.test_size = static_cast<std::size_t>(int_in(o, "test_size", 200, 1, 100000));
  m.gen.max_length = static_cast<std::size_t>(int_in(o, "max_length", 30, 1, kMaxPositions / 2 - 2));
  for (const char* k : {"train_size", "max_depth"})
    if (files && o.has(k)) throw ConfigError(o.path(k), "only for corpus = \"generated\" (files give their own)");
  for (const char* k : {"source_file", "target_file"}) {
    if (!files && o.has(k)) throw ConfigError(o.path(k), "only for corpus = \"files\"");
    if (files && !o.has(k)) throw ConfigError(o.path(k), "missing (required with corpus = \"files\")");
  }
  m.gen.train_size = static_cast<std::size_t>(int_in(o, "train_size", 20000, 1, 5000000));
  m.gen.max_depth = static_cast<int>(int_in(o, "max_depth", 2, 0, 4));
  if (files) {
    m.source_file = o.string("source_file", std::nullopt);
    m.target_file = o.string("target_file", std::nullopt);
    if (read_files)  // refuses missing, empty and mismatched files now, before anything runs
      read_corpus_files(m.source_file, m.target_file, m.gen.seed, m.gen.dev_size, m.gen.test_size, m.gen.max_length,
                        o.path("source_file"), o.path("target_file"));
  }
  m.corpus_key = nlohmann::json{{"corpus", m.corpus},
                                {"seed", m.gen.seed},
                                {"train", m.gen.train_size},
                                {"dev", m.gen.dev_size},
                                {"test", m.gen.test_size},
                                {"max_length", m.gen.max_length},
                                {"depth", m.gen.max_depth},
                                {"src", m.source_file},
                                {"tgt", m.target_file},
                                {"where_src", o.path("source_file")},
                                {"where_tgt", o.path("target_file")}}
                     .dump();

  m.d_model = int_in(o, "d_model", 64, 4, 4096);
  m.heads = int_in(o, "heads", 4, 1, 64);
  if (m.d_model % m.heads != 0)
    throw ConfigError(o.path("heads"), "must divide d_model (" + std::to_string(m.d_model) + ")");
  m.layers = int_in(o, "layers", 2, 1, 24);
  m.ffn = int_in(o, "ffn", 4 * m.d_model, 1, 65536);
  m.batch_size = int_in(o, "batch_size", 32, 1, 65536);
  m.label_smoothing = o.number("label_smoothing", 0.1);
  if (!(m.label_smoothing >= 0 && m.label_smoothing < 1))
    throw ConfigError(o.path("label_smoothing"), "must be in [0, 1)");
  m.lr_schedule = o.string("lr_schedule", "constant");
  if (m.lr_schedule != "constant" && m.lr_schedule != "rsqrt")
    throw ConfigError(o.path("lr_schedule"), "unknown schedule '" + m.lr_schedule + "' (known: constant, rsqrt)");
  m.warmup_steps = int_in(o, "warmup_steps", m.lr_schedule == "rsqrt" ? 400 : 0, 0, INT64_MAX / 4);
  if (m.lr_schedule == "rsqrt" && m.warmup_steps < 1)
    throw ConfigError(o.path("warmup_steps"), "must be >= 1 with lr_schedule = \"rsqrt\"");
  m.lr = o.number("lr", 1e-3);
  if (!(m.lr > 0) || !std::isfinite(m.lr)) throw ConfigError(o.path("lr"), "must be a positive number");
  m.dropout.attention = dropout_option(o, "attention_dropout", 0.1);
  m.dropout.layer = dropout_option(o, "layer_dropout", 0.1);
  m.dropout.relu = dropout_option(o, "relu_dropout", 0.1);
  m.dropout.embedding = dropout_option(o, "embedding_dropout", 0.1);
  torchx::read_device(o);  // checks it
  m.device = o.string("device", "cpu");
  m.report_test = o.boolean("report_test", true);
  o.finish();
  return m;
}

// ---------------------------------------------------------------------------------------
// Vocabularies and the encoded corpus, shared by every member a worker process runs.
struct Vocab {
  std::vector<std::string> words{"<pad>", "<unk>", "<s>", "</s>"};
  std::unordered_map<std::string, std::int64_t> ids;
  explicit Vocab(const std::vector<Sentence>& sentences) {
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(words.size()); ++i) ids[words[i]] = i;
    for (const auto& s : sentences)
      for (const auto& w : s)
        if (ids.emplace(w, static_cast<std::int64_t>(words.size())).second) words.push_back(w);
  }
  std::int64_t id(const std::string& w) const {
    auto it = ids.find(w);
    return it == ids.end() ? kUnk : it->second;
  }
  std::int64_t size() const { return static_cast<std::int64_t>(words.size()); }
};

struct Data {
  Corpus corpus;
  Vocab src_vocab, tgt_vocab;
  std::vector<std::vector<std::int64_t>> train_src, train_tgt, dev_src, test_src;
  std::int64_t max_target = 0;  // longest training target: greedy decoding stops a few tokens past it
  explicit Data(Corpus c) : corpus(std::move(c)), src_vocab(corpus.train.source), tgt_vocab(corpus.train.target) {
    auto enc = [](const Vocab& v, const std::vector<Sentence>& ss) {
      std::vector<std::vector<std::int64_t>> out;
      for (const auto& s : ss) {
        std::vector<std::int64_t> ids;
        for (const auto& w : s) ids.push_back(v.id(w));
        out.push_back(std::move(ids));
      }
      return out;
    };
    for (const auto& t : corpus.train.target) max_target = std::max<std::int64_t>(max_target, t.size());
    train_src = enc(src_vocab, corpus.train.source);
    train_tgt = enc(tgt_vocab, corpus.train.target);
    dev_src = enc(src_vocab, corpus.dev.source);
    test_src = enc(src_vocab, corpus.test.source);
  }
};

std::shared_ptr<const Data> load_data(const MtOptions& m) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Data>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(m.corpus_key);
  if (it != cache.end()) return it->second;
  Corpus c;
  if (m.corpus == "generated") {
    c = generate_corpus(m.gen);
  } else {
    const auto k = nlohmann::json::parse(m.corpus_key);
    c = read_corpus_files(m.source_file, m.target_file, m.gen.seed, m.gen.dev_size, m.gen.test_size, m.gen.max_length,
                          k["where_src"].get<std::string>(), k["where_tgt"].get<std::string>());
  }
  auto d = std::make_shared<const Data>(std::move(c));
  cache[m.corpus_key] = d;
  return d;
}

// Sequences of ids as a (max_len + extra, batch) tensor: [prefix] ids [suffix], padded.
torch::Tensor pack(const std::vector<const std::vector<std::int64_t>*>& seqs, std::int64_t prefix,
                   std::int64_t suffix) {
  std::size_t len = 0;
  for (auto* s : seqs) len = std::max(len, s->size());
  const std::int64_t T = static_cast<std::int64_t>(len) + (prefix >= 0) + (suffix >= 0);
  const std::int64_t B = static_cast<std::int64_t>(seqs.size());
  std::vector<std::int64_t> buf(static_cast<std::size_t>(T * B), kPad);
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t t = 0;
    if (prefix >= 0) buf[t++ * B + b] = prefix;
    for (auto id : *seqs[b]) buf[t++ * B + b] = id;
    if (suffix >= 0) buf[t * B + b] = suffix;
  }
  return torch::from_blob(buf.data(), {T, B}, torch::kInt64).clone();
}

// ---------------------------------------------------------------------------------------
// The model. Tensors are (length, batch, d_model), MultiheadAttention's layout in LibTorch 1.13.
namespace F = torch::nn::functional;

struct EncoderLayerImpl : torch::nn::Module {
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::MultiheadAttention attn{nullptr};
  torch::nn::Linear ff1{nullptr}, ff2{nullptr};
  EncoderLayerImpl(std::int64_t d, std::int64_t heads, std::int64_t ffn) {
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    attn = register_module("attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(d, heads)));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    ff1 = register_module("ff1", torch::nn::Linear(d, ffn));
    ff2 = register_module("ff2", torch::nn::Linear(ffn, d));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& src_pad, const Dropouts& p) {
    auto h = ln1(x);
    h = std::get<0>(attn->forward(h, h, h, src_pad, /*need_weights=*/false));
    x = x + F::dropout(h, F::DropoutFuncOptions().p(p.layer).training(is_training()));
    h = F::dropout(torch::relu(ff1(ln2(x))), F::DropoutFuncOptions().p(p.relu).training(is_training()));
    return x + F::dropout(ff2(h), F::DropoutFuncOptions().p(p.layer).training(is_training()));
  }
};
TORCH_MODULE(EncoderLayer);

struct DecoderLayerImpl : torch::nn::Module {
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr}, ln3{nullptr};
  torch::nn::MultiheadAttention self_attn{nullptr}, cross_attn{nullptr};
  torch::nn::Linear ff1{nullptr}, ff2{nullptr};
  DecoderLayerImpl(std::int64_t d, std::int64_t heads, std::int64_t ffn) {
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    self_attn =
        register_module("self_attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(d, heads)));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    cross_attn =
        register_module("cross_attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(d, heads)));
    ln3 = register_module("ln3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    ff1 = register_module("ff1", torch::nn::Linear(d, ffn));
    ff2 = register_module("ff2", torch::nn::Linear(ffn, d));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& memory, const torch::Tensor& src_pad,
                        const torch::Tensor& causal, const Dropouts& p) {
    auto drop = [&](const torch::Tensor& t, double q) {
      return F::dropout(t, F::DropoutFuncOptions().p(q).training(is_training()));
    };
    auto h = ln1(x);
    h = std::get<0>(self_attn->forward(h, h, h, torch::Tensor(), false, causal));
    x = x + drop(h, p.layer);
    h = std::get<0>(cross_attn->forward(ln2(x), memory, memory, src_pad, false));
    x = x + drop(h, p.layer);
    h = drop(torch::relu(ff1(ln3(x))), p.relu);
    return x + drop(ff2(h), p.layer);
  }
};
TORCH_MODULE(DecoderLayer);

struct Seq2SeqImpl : torch::nn::Module {
  std::int64_t d;
  torch::nn::Embedding src_emb{nullptr}, tgt_emb{nullptr};
  std::vector<EncoderLayer> enc;
  std::vector<DecoderLayer> dec;
  torch::nn::LayerNorm enc_ln{nullptr}, dec_ln{nullptr};
  torch::Tensor positions;  // sinusoidal, (kMaxPositions, 1, d): a constant, not saved
  Dropouts p;

  Seq2SeqImpl(std::int64_t src_vocab, std::int64_t tgt_vocab, const MtOptions& o) : d(o.d_model) {
    src_emb = register_module("src_emb", torch::nn::Embedding(src_vocab, d));
    tgt_emb = register_module("tgt_emb", torch::nn::Embedding(tgt_vocab, d));
    // Embeddings ~ N(0, 1/d), scaled by sqrt(d) on the way in; the output layer is the target
    // embedding transposed (weights shared, as tensor2tensor does).
    torch::NoGradGuard ng;
    src_emb->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(d)));
    tgt_emb->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(d)));
    for (std::int64_t i = 0; i < o.layers; ++i) {
      enc.push_back(register_module("enc" + std::to_string(i), EncoderLayer(d, o.heads, o.ffn)));
      dec.push_back(register_module("dec" + std::to_string(i), DecoderLayer(d, o.heads, o.ffn)));
    }
    enc_ln = register_module("enc_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    dec_ln = register_module("dec_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    auto pos = torch::arange(kMaxPositions, torch::kFloat).unsqueeze(1);
    auto div = torch::exp(torch::arange(0, d, 2, torch::kFloat) * (-std::log(10000.0) / d));
    positions = torch::zeros({kMaxPositions, d});
    positions.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                         torch::sin(pos * div));
    positions.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                         torch::cos(pos * div).index({torch::indexing::Slice(), torch::indexing::Slice(0, d / 2)}));
    positions = positions.unsqueeze(1);
  }

  void set_dropouts(const Dropouts& q) {
    p = q;
    for (auto& l : enc) l->attn->options.dropout(q.attention);  // read by every forward: in place
    for (auto& l : dec) {
      l->self_attn->options.dropout(q.attention);
      l->cross_attn->options.dropout(q.attention);
    }
  }

  torch::Tensor embed(torch::nn::Embedding& e, const torch::Tensor& ids) {
    const auto T = ids.size(0);
    auto x = e(ids) * std::sqrt(static_cast<double>(d)) + positions.slice(0, 0, T).to(ids.device());
    return F::dropout(x, F::DropoutFuncOptions().p(p.embedding).training(is_training()));
  }

  // src: (S, B) ids. Returns the memory (S, B, d) and the padding mask (B, S).
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& src) {
    auto pad = src.eq(kPad).t();
    auto x = embed(src_emb, src);
    for (auto& l : enc) x = l->forward(x, pad, p);
    return {enc_ln(x), pad};
  }

  // tgt_in: (T, B) ids. Returns logits (T, B, V).
  torch::Tensor decode(const torch::Tensor& tgt_in, const torch::Tensor& memory, const torch::Tensor& src_pad) {
    const auto T = tgt_in.size(0);
    // LibTorch 1.13 adds attn_mask to the attention logits (a bool mask would add 1, not
    // mask), so the causal mask is -inf above the diagonal.
    auto causal = torch::full({T, T}, -std::numeric_limits<float>::infinity(),
                              torch::TensorOptions().dtype(torch::kFloat).device(tgt_in.device()))
                      .triu(1);
    auto x = embed(tgt_emb, tgt_in);
    for (auto& l : dec) x = l->forward(x, memory, src_pad, causal, p);
    return F::linear(dec_ln(x), tgt_emb->weight);
  }
};
TORCH_MODULE(Seq2Seq);

// ---------------------------------------------------------------------------------------
class TranslationTrainable : public Trainable {
 public:
  TranslationTrainable(const TrainableContext& ctx, MtOptions o)
      : o_(std::move(o)), rng_(ctx.seed), device_(o_.device), log_(ctx.log) {
    torchx::use_one_thread();
    data_ = load_data(o_);
    {
      auto s = rng_.enter();  // the member's own initialisation
      model_ = Seq2Seq(data_->src_vocab.size(), data_->tgt_vocab.size(), o_);
    }
    model_->to(device_);
    lr_ = o_.lr;
    dropouts_ = o_.dropout;
    model_->set_dropouts(dropouts_);
    opt_ = std::make_unique<torch::optim::Adam>(model_->parameters(),
                                                torch::optim::AdamOptions(lr_).betas({0.9, 0.98}).eps(1e-9));
  }

  void apply(const Hyperparams& h) override {
    check_hyperparams(h);
    for (const auto& [name, v] : h) {
      const double x = as_double(v);
      if (name == "lr") lr_ = x;
      else if (name == "attention_dropout") dropouts_.attention = x;
      else if (name == "layer_dropout") dropouts_.layer = x;
      else if (name == "relu_dropout") dropouts_.relu = x;
      else dropouts_.embedding = x;
    }
    model_->set_dropouts(dropouts_);
  }

  double scheduled_lr(std::int64_t step) const {
    const double s = static_cast<double>(step), w = static_cast<double>(o_.warmup_steps);
    if (o_.lr_schedule == "rsqrt") return lr_ * std::min(s / w, std::sqrt(w / s));  // peak lr_ at the warm-up's end
    return o_.warmup_steps > 0 && s < w ? lr_ * s / w : lr_;
  }

  void step(std::int64_t n) override {
    if (diverged_) return;  // scored NaN until exploit replaces it
    model_->train();
    auto s = rng_.enter();
    const auto t0 = std::chrono::steady_clock::now();
    double tokens = 0, loss_sum = 0;
    std::int64_t done = 0;
    const auto N = static_cast<std::int64_t>(data_->train_src.size());
    for (std::int64_t i = 0; i < n; ++i) {
      torchx::set_learning_rate(*opt_, scheduled_lr(step_ + 1));
      auto idx = torch::randint(N, {o_.batch_size}, torch::kInt64);
      auto acc = idx.accessor<std::int64_t, 1>();
      std::vector<const std::vector<std::int64_t>*> src, tgt;
      for (std::int64_t b = 0; b < o_.batch_size; ++b) {
        src.push_back(&data_->train_src[acc[b]]);
        tgt.push_back(&data_->train_tgt[acc[b]]);
      }
      auto src_t = pack(src, -1, kEos).to(device_);
      auto tgt_in = pack(tgt, kBos, -1).to(device_);
      auto tgt_out = pack(tgt, -1, kEos).to(device_);
      auto [memory, pad] = model_->encode(src_t);
      auto logits = model_->decode(tgt_in, memory, pad);
      auto loss = F::cross_entropy(logits.reshape({-1, logits.size(2)}), tgt_out.reshape({-1}),
                                   F::CrossEntropyFuncOptions().ignore_index(kPad).label_smoothing(o_.label_smoothing));
      const double l = loss.item<double>();
      if (!std::isfinite(l)) {
        diverged_ = true;
        if (log_) log_("diverged at step " + std::to_string(step_ + 1) + " (loss " + std::to_string(l) + ")");
        break;
      }
      opt_->zero_grad();
      loss.backward();
      opt_->step();
      ++step_;
      ++done;
      loss_sum += l;
      tokens += tgt_out.ne(kPad).sum().item<double>();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (done > 0) {
      last_loss_ = loss_sum / done;
      tokens_per_s_ = secs > 0 ? tokens / secs : 0;
    }
  }

  Score eval() override {
    Score sc;
    if (diverged_ || !params_finite()) {
      sc.value = std::numeric_limits<double>::quiet_NaN();
      sc.metrics = {{"diverged", true}};
      return sc;
    }
    const auto hyp = translate(data_->dev_src);
    const double dev = 100 * corpus_bleu(hyp, data_->corpus.dev.target);
    // Selection sees the dev set only. Early in training no 4-gram matches yet and every
    // member scores BLEU 0: a tie that exploit would break by member id, copying at random.
    // Unigram BLEU, weighted 1e-3 (at most 0.1 BLEU), breaks such ties with what the models
    // already get right; wherever BLEU-4 differs by more than 0.1 it decides alone.
    const double unigram = 100 * corpus_bleu(hyp, data_->corpus.dev.target, 1);
    sc.value = dev + 1e-3 * unigram;
    sc.metrics = {{"dev_bleu", dev},
                  {"dev_bleu1", unigram},
                  {"train_loss", last_loss_},
                  {"train_tokens_per_s", tokens_per_s_},
                  {"lr", scheduled_lr(std::max<std::int64_t>(step_, 1))},
                  {"train_step", step_}};
    if (o_.report_test)
      sc.metrics["test_bleu"] = 100 * corpus_bleu(translate(data_->test_src), data_->corpus.test.target);
    return sc;
  }

  std::string state_bytes() const {
    std::string out;
    auto add = [&](const torch::Tensor& t) {
      auto c = t.detach().to(torch::kCPU).contiguous();
      out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
    };
    for (const auto& p : model_->parameters()) {
      add(p);
      auto it = opt_->state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == opt_->state().end()) continue;
      const auto& st = static_cast<const torch::optim::AdamParamState&>(*it->second);
      add(st.exp_avg());
      add(st.exp_avg_sq());
      out += std::to_string(st.step()) + ";";
    }
    add(rng_.state());
    out += std::to_string(step_) + (diverged_ ? "d" : "");
    return out;
  }

  void save(CheckpointWriter& out) const override {
    torchx::write_archive(out, kMagic, [&](torch::serialize::OutputArchive& a) {
      torchx::save_module(a, "model", *model_);
      torchx::save_optimizer(a, "optimizer", *opt_);
      a.write("rng", rng_.state());
      a.write("step", torch::tensor({step_}, torch::kInt64));
      a.write("diverged", torch::tensor({static_cast<std::int64_t>(diverged_)}, torch::kInt64));
      a.write("shape",
              torch::tensor({data_->src_vocab.size(), data_->tgt_vocab.size(), o_.d_model, o_.layers, o_.heads, o_.ffn},
                            torch::kInt64));
    });
  }

  void load(CheckpointReader& in) override {
    torch::Tensor rng, step, diverged, shape;
    torchx::read_archive(in, kMagic, "translation", [&](torch::serialize::InputArchive& a) {
      a.read("shape", shape);
      const std::vector<std::int64_t> want = {
          data_->src_vocab.size(), data_->tgt_vocab.size(), o_.d_model, o_.layers, o_.heads, o_.ffn};
      if (shape.numel() != 6 ||
          std::vector<std::int64_t>(shape.data_ptr<std::int64_t>(), shape.data_ptr<std::int64_t>() + 6) != want)
        throw CheckpointError("translation checkpoint was made for another corpus or model size");
      torchx::load_module(a, "model", *model_);
      torchx::load_optimizer(a, "optimizer", *opt_);
      a.read("rng", rng);
      a.read("step", step);
      a.read("diverged", diverged);
    });
    model_->to(device_);
    step_ = step.item<std::int64_t>();
    diverged_ = diverged.item<std::int64_t>() != 0;
    // The stream resumes exactly; a copy gets its own from copied(). (Older checkpoints
    // also hold the writer's member id, no longer read.)
    rng_.set_state(rng);
  }

  // Another member's checkpoint: keep its model and optimizer, but draw batches (the data
  // order) and dropout masks from this member's own stream, not the donor's.
  void copied(const Copied& from) override { rng_ = torchx::MemberRng(from.seed); }

 private:
  bool params_finite() const {
    torch::NoGradGuard ng;
    for (const auto& p : model_->parameters())
      if (!torchx::all_finite(p)) return false;
    return true;
  }

  // Greedy decoding, 200 sentences at a time, at most 5 tokens longer than the longest
  // training target (an untrained model that never says </s> costs no more than that).
  std::vector<Sentence> translate(const std::vector<std::vector<std::int64_t>>& sources) {
    torch::NoGradGuard ng;
    model_->eval();
    std::vector<Sentence> out;
    const auto& words = data_->tgt_vocab.words;
    for (std::size_t at = 0; at < sources.size(); at += 200) {
      std::vector<const std::vector<std::int64_t>*> batch;
      for (std::size_t i = at; i < std::min(sources.size(), at + 200); ++i) batch.push_back(&sources[i]);
      auto src = pack(batch, -1, kEos).to(device_);
      const auto B = src.size(1);
      const std::int64_t max_len = std::min<std::int64_t>(
          std::min<std::int64_t>(2 * src.size(0) + 10, data_->max_target + 6), kMaxPositions - 1);
      auto [memory, pad] = model_->encode(src);
      auto ys = torch::full({1, B}, kBos, torch::TensorOptions().dtype(torch::kInt64).device(device_));
      auto finished = torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).device(device_));
      for (std::int64_t t = 0; t < max_len; ++t) {
        auto logits = model_->decode(ys, memory, pad);
        auto next = logits[-1].argmax(-1);
        next = torch::where(finished, torch::full_like(next, kPad), next);
        ys = torch::cat({ys, next.unsqueeze(0)}, 0);
        finished = finished | next.eq(kEos);
        if (finished.all().item<bool>()) break;
      }
      auto cpu = ys.to(torch::kCPU);
      auto acc = cpu.accessor<std::int64_t, 2>();
      for (std::int64_t b = 0; b < B; ++b) {
        Sentence s;
        for (std::int64_t t = 1; t < cpu.size(0); ++t) {
          const auto id = acc[t][b];
          if (id == kEos || id == kPad) break;
          s.push_back(words[static_cast<std::size_t>(id)]);
        }
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  MtOptions o_;
  torchx::MemberRng rng_;
  torch::Device device_;
  std::function<void(const std::string&)> log_;
  std::shared_ptr<const Data> data_;
  Seq2Seq model_{nullptr};
  std::unique_ptr<torch::optim::Adam> opt_;
  double lr_;
  Dropouts dropouts_;
  std::int64_t step_ = 0;
  bool diverged_ = false;
  double last_loss_ = std::numeric_limits<double>::quiet_NaN();
  double tokens_per_s_ = 0;
};

}  // namespace

std::string training_state_bytes(const Trainable& t) {
  const auto* m = dynamic_cast<const TranslationTrainable*>(&t);
  if (!m) throw std::invalid_argument("training_state_bytes: not a translation trainable");
  return m->state_bytes();
}

void check_options(const nlohmann::json& options, const std::string& where) { read_options(options, where, true); }

void check_hyperparams(const Hyperparams& h) {
  for (const auto& [name, v] : h) {
    if (!kHyperparameters.count(name))
      throw ConfigError("[space] " + name,
                        "the translation trainable has no hyperparameter of that name "
                        "(it takes lr, attention_dropout, layer_dropout, relu_dropout, "
                        "embedding_dropout)");
    const double x = as_double(v);
    if (name == "lr") {
      if (!(x > 0) || !std::isfinite(x)) throw ConfigError("[space] lr", "must be positive, got " + std::to_string(x));
    } else if (!(x >= 0 && x < 1)) {
      throw ConfigError("[space] " + name, "a dropout must be in [0, 1), got " + std::to_string(x));
    }
  }
}

std::unique_ptr<Trainable> make_translation_trainable(const TrainableContext& ctx, const std::string& where) {
  auto o = read_options(ctx.options, where, false);
  return std::make_unique<TranslationTrainable>(ctx, std::move(o));
}

}  // namespace pbt::mt
