// Why this file exists: TensorBoard event files (run.dir/tb/), written without TensorFlow or
// protobuf: a TFRecord stream (u64 length, masked CRC-32C of it, the bytes, masked CRC-32C
// of them) of `Event` messages encoded by hand with the field numbers of TensorBoard's
// event.proto and summary.proto: scalars (simple_value), PNG images (Summary.Image), text
// (a DT_STRING tensor with the "text" plugin's metadata), and SessionLog START, which makes
// TensorBoard drop the events of later steps (a resumed run's superseded history).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace ladder::io {

// CRC-32C (Castagnoli) of bytes, and TFRecord's mask of it.
uint32_t crc32c(const uint8_t* bytes, size_t count);
uint32_t masked_crc32c(const uint8_t* bytes, size_t count);

class TensorBoardWriter {
 public:
  // Creates `dir` and a new events file in it (events.out.tfevents.<time>.ladder.<pid>).
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalar(const std::string& tag, int64_t step, double value);
  // png: a whole PNG file's bytes; its size is read from its header.
  void image(const std::string& tag, int64_t step, const std::vector<uint8_t>& png);
  void text(const std::string& tag, int64_t step, const std::string& text);
  // Events of steps after `step` in this run's earlier files are superseded.
  void restart_at(int64_t step);
  const std::string& path() const { return path_; }

 private:
  void write_event(int64_t step, const std::string& what);  // `what`: encoded oneof field(s)

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace ladder::io
