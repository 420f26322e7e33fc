#include "semrec/text/safetensors.hpp"

#include <fstream>

namespace semrec::text {

SafetensorsHeader read_safetensors_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto end = in.tellg();
  if (end < 0) throw SafetensorsError(path + ": cannot read the file's size");
  const auto file_size = static_cast<std::uint64_t>(end);
  if (file_size < 8) throw SafetensorsError(path + ": file too short for a safetensors header");
  in.seekg(0);
  unsigned char len_bytes[8] = {};
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  // A directory opens on Linux (with a nonsense size) and fails here: unchecked, the length
  // would be whatever the buffer held.
  if (!in) throw SafetensorsError(path + ": cannot read the header length (a directory?)");
  std::uint64_t len = 0;
  for (int k = 7; k >= 0; --k) len = (len << 8) | len_bytes[k];  // little-endian
  if (len < 2 || len > 100'000'000 || len > file_size - 8) {
    throw SafetensorsError(path + ": header length " + std::to_string(len) +
                           " does not fit the file (" + std::to_string(file_size) + " bytes)");
  }
  SafetensorsHeader h;
  h.json.resize(len);
  in.read(h.json.data(), static_cast<std::streamsize>(len));
  if (!in) throw SafetensorsError(path + ": cannot read the header");
  h.data_start = 8 + len;
  h.data_size = file_size - h.data_start;
  return h;
}

}  // namespace semrec::text
