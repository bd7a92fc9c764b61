// Checkpoint writers and readers: in memory and streamed through a sink/source, the bytes
// and their order are the same, and a streamed reader never asks for the whole checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <random>

#include "pbt/checkpoint_io.hpp"
#include "pbt/store.hpp"

namespace pbt {
namespace {

// Records what reaches it, and the largest single write.
struct RecordingSink : CheckpointSink {
  std::string bytes;
  std::size_t writes = 0, largest = 0;
  void write(const char* d, std::size_t n) override {
    bytes.append(d, n);
    ++writes;
    largest = std::max(largest, n);
  }
};

// Serves bytes in reads of at most `step`, and remembers the largest request.
struct ChoppySource : CheckpointSource {
  std::string bytes;
  std::size_t pos = 0, step, largest = 0;
  ChoppySource(std::string b, std::size_t s) : bytes(std::move(b)), step(s) {}
  std::uint64_t size() const override { return bytes.size(); }
  std::size_t read(char* out, std::size_t n) override {
    largest = std::max(largest, n);
    n = std::min({n, step, bytes.size() - pos});
    std::copy_n(bytes.data() + pos, n, out);
    pos += n;
    return n;
  }
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// What a trainable might write: small values, a string, a vector, and a large block.
void save_sample(CheckpointWriter& w, const std::string& block) {
  w.write<std::int64_t>(42);
  w.write_string("weights");
  w.write_vector(std::vector<float>{1.5f, -2.0f, 3.25f});
  w.write_bytes(block.data(), block.size());
  w.write<double>(0.125);
}

void load_sample(CheckpointReader& r, const std::string& block) {
  EXPECT_EQ(r.read<std::int64_t>(), 42);
  EXPECT_EQ(r.read_string(), "weights");
  EXPECT_EQ(r.read_vector<float>(), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  std::string back(block.size(), '\0');
  r.read_bytes(back.data(), back.size());
  EXPECT_TRUE(back == block);
  EXPECT_EQ(r.read<double>(), 0.125);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(CheckpointIo, AStreamedWriterPassesTheSameBytesInOrderAndHoldsAtMostAChunk) {
  const std::string block = random_bytes(3u << 20, 1);
  CheckpointWriter memory;
  save_sample(memory, block);
  RecordingSink sink;
  {
    CheckpointWriter w(sink);
    save_sample(w, block);
    w.flush();
    EXPECT_EQ(w.size(), memory.bytes().size());
  }
  EXPECT_TRUE(sink.bytes == memory.bytes());
  // Small values are gathered, not passed on one by one.
  EXPECT_LE(sink.writes, 6u);
  EXPECT_THROW(CheckpointWriter(sink).take(), Error);
}

TEST(CheckpointIo, AStreamedReaderReadsAcrossChunksAndNeverAsksForTheWhole) {
  const std::string block = random_bytes(5u << 20, 2);
  CheckpointWriter memory;
  save_sample(memory, block);
  ChoppySource source(memory.bytes(), 777'777);  // reads end mid-value
  CheckpointReader r(source);
  EXPECT_EQ(r.size(), memory.bytes().size());
  load_sample(r, block);
  EXPECT_LE(source.largest, block.size());
}

TEST(CheckpointIo, ATruncatedStreamIsACheckpointErrorThatSaysWhere) {
  CheckpointWriter memory;
  save_sample(memory, random_bytes(100, 3));
  struct Short : ChoppySource {
    using ChoppySource::ChoppySource;
    std::uint64_t size() const override { return bytes.size() + 10; }  // claims more than it has
  } source(memory.bytes(), 4096);
  CheckpointReader r(source);
  try {
    r.read<std::int64_t>();  // may already find the end short: it reads ahead
    std::string rest(r.remaining(), '\0');
    r.read_bytes(rest.data(), rest.size());
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  std::string bytes = memory.bytes();
  CheckpointReader m(bytes);
  std::string too_much(bytes.size() + 1, '\0');
  EXPECT_THROW(m.read_bytes(too_much.data(), too_much.size()), CheckpointError);
}

TEST(CheckpointIo, StreamAdaptersRoundTripThroughOstreamAndIstream) {
  const std::string text = random_bytes(300'000, 4);
  RecordingSink sink;
  {
    CheckpointWriter w(sink);
    w.stream().write(text.data(), static_cast<std::streamsize>(text.size()));
    w.stream() << 'x';
    w.flush();
  }
  ASSERT_EQ(sink.bytes.size(), text.size() + 1);
  ChoppySource source(sink.bytes, 1000);
  CheckpointReader r(source);
  std::string back(text.size() + 1, '\0');
  r.stream().read(back.data(), static_cast<std::streamsize>(back.size()));
  EXPECT_EQ(r.stream().gcount(), static_cast<std::streamsize>(back.size()));
  EXPECT_TRUE(back == text + "x");
}

TEST(CheckpointIo, FilesGoInAndComeOutWhole) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pbt-ckio-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string bytes = random_bytes(2'500'000, 5);
  const std::string in = (dir / "in").string();
  std::ofstream(in, std::ios::binary) << bytes;

  CheckpointWriter memory;
  memory.write_file(in);
  EXPECT_TRUE(memory.bytes() == bytes);
  EXPECT_THROW(memory.write<int>(1), Error);  // a file is the whole checkpoint

  RecordingSink sink;  // the default adopt_file streams the file through write()
  CheckpointWriter streamed(sink);
  streamed.write_file(in);
  EXPECT_TRUE(sink.bytes == bytes);

  ChoppySource source(bytes, 65'536);
  CheckpointReader r(source);
  const std::string out = (dir / "out").string();
  r.to_file(out);
  std::ifstream f(out, std::ios::binary);
  EXPECT_TRUE(std::string(std::istreambuf_iterator<char>(f), {}) == bytes);
  EXPECT_THROW(r.to_file(out), Error);  // already read

  const std::string kept = bytes;
  CheckpointReader m(kept);
  const std::string out2 = (dir / "out2").string();
  m.to_file(out2);
  EXPECT_EQ(fs::file_size(out2), bytes.size());
  fs::remove_all(dir);
}

TEST(CheckpointIo, TheDefaultStagerHashesWhatWasWritten) {
  const std::string bytes = random_bytes(200'000, 6);
  // Store's default stager, through any store: the memory store.
  std::unique_ptr<Store> store = open_store("memory:");
  std::unique_ptr<CheckpointStager> st = store->stage_checkpoint();
  {
    CheckpointWriter w(*st);
    w.write_bytes(bytes.data(), bytes.size());
    w.flush();
  }
  std::shared_ptr<StagedCheckpoint> staged = st->finish();
  EXPECT_EQ(staged->id(), checkpoint_id(bytes));
  EXPECT_EQ(staged->size(), bytes.size());
  EXPECT_TRUE(staged->bytes() == bytes);
  EXPECT_TRUE(staged->temp_file().empty());
}

}  // namespace
}  // namespace pbt
