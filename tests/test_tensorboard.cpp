// Why this file exists: the TensorBoard writer's framing (io/tensorboard_writer.h): CRC-32C
// against its published check value, and every record of a file we write framed as TFRecord
// (length, masked CRC of the length, data, masked CRC of the data) with the event file header
// first. TensorBoard's own reader is run on a real run in tests/interop/tensorboard_events.py.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/tensorboard_writer.h"
#include "test_support.h"

namespace ladder {
namespace {

TEST(TensorBoard, Crc32cHasItsCheckValue) {
  const char* check = "123456789";
  EXPECT_EQ(io::crc32c(reinterpret_cast<const uint8_t*>(check), 9), 0xE3069283u);  // RFC 3720 B.4
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(io::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4, 32 zero bytes
  const uint32_t crc = io::crc32c(zeros.data(), zeros.size());
  EXPECT_EQ(io::masked_crc32c(zeros.data(), zeros.size()), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, EveryRecordIsFramedAndChecksummed) {
  testing::TempDir dir;
  std::string path;
  {
    io::TensorBoardWriter writer(dir / "tb");
    writer.scalar("loss", 3, 0.25);
    writer.text("config", 0, "[run]\nseed = 1\n");
    writer.restart_at(2);
    path = writer.path();
  }
  const std::string bytes = testing::read_file(path);
  size_t at = 0;
  int records = 0;
  while (at < bytes.size()) {
    ASSERT_LE(at + 12, bytes.size());
    uint64_t length = 0;
    std::memcpy(&length, bytes.data() + at, 8);
    uint32_t length_crc, data_crc;
    std::memcpy(&length_crc, bytes.data() + at + 8, 4);
    EXPECT_EQ(length_crc, io::masked_crc32c(reinterpret_cast<const uint8_t*>(bytes.data() + at), 8));
    ASSERT_LE(at + 12 + length + 4, bytes.size());
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data() + at + 12);
    std::memcpy(&data_crc, bytes.data() + at + 12 + length, 4);
    EXPECT_EQ(data_crc, io::masked_crc32c(data, length));
    if (records == 0) {
      EXPECT_NE(std::string(reinterpret_cast<const char*>(data), length).find("brain.Event:2"), std::string::npos);
    }
    at += 12 + length + 4;
    ++records;
  }
  EXPECT_EQ(records, 4);
}

}  // namespace
}  // namespace ladder
