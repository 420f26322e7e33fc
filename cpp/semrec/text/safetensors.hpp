// Minimal safetensors reader: the 8-byte little-endian header length, the JSON header (parsed
// by the caller) and tensors read from the data block by their data_offsets.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace semrec::text {

// Raised for a file that is not valid safetensors (truncated, bad header length, bad offsets).
struct SafetensorsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SafetensorsHeader {
  std::string json;          // the header text, to be parsed by the caller
  std::uint64_t data_start;  // file offset of the data block
  std::uint64_t data_size;   // bytes in the data block
};

// Reads and checks the header framing; throws std::runtime_error (missing file) or
// SafetensorsError (corrupt file).
SafetensorsHeader read_safetensors_header(const std::string& path);

// One tensor's entry in the header, already validated against the data block.
struct TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "F16" or "BF16"
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;  // relative to the data block
};

}  // namespace semrec::text
