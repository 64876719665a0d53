#include "gzip_inflate.h"

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace layerstore {
namespace {

constexpr size_t kInputChunk = 256 << 10;

std::string DescribeError(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid back-reference distance";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "gzip member is not deflate-compressed";
    case ISAL_INCORRECT_CHECKSUM: return "gzip CRC-32 or length mismatch";
    case ISAL_NEED_DICT: return "stream needs a preset dictionary";
    default: return "inflate error " + std::to_string(rc);
  }
}

void StartMember(inflate_state* s) {
  // isal_inflate_reset clears the input pointers: keep what is left of the buffer.
  uint8_t* next = s->next_in;
  uint32_t avail = s->avail_in;
  isal_inflate_reset(s);
  s->next_in = next;
  s->avail_in = avail;
  s->crc_flag = ISAL_GZIP;  // header parsed, CRC-32 and ISIZE of the trailer checked
}

}  // namespace

GzipInflater::GzipInflater(Input input)
    : input_(std::move(input)), state_(std::make_unique<inflate_state>()), in_(kInputChunk) {
  isal_inflate_init(state_.get());
  state_->crc_flag = ISAL_GZIP;
}

GzipInflater::~GzipInflater() = default;

Result<bool> GzipInflater::Refill(size_t keep) {
  if (input_ended_) return false;
  if (keep > 0) std::memmove(in_.data(), state_->next_in, keep);
  LS_ASSIGN_OR_RETURN(size_t n, input_(in_.data() + keep, in_.size() - keep));
  if (n == 0) input_ended_ = true;
  state_->next_in = reinterpret_cast<uint8_t*>(in_.data());
  state_->avail_in = static_cast<uint32_t>(keep + n);
  return n > 0;
}

Result<bool> GzipInflater::NextMember() {
  // The magic needs two bytes; a member may end one byte before the buffer does.
  while (state_->avail_in < 2) {
    LS_ASSIGN_OR_RETURN(bool more, Refill(state_->avail_in));
    if (!more) return false;
  }
  if (state_->next_in[0] != 0x1f || state_->next_in[1] != 0x8b) return false;
  StartMember(state_.get());
  return true;
}

Result<size_t> GzipInflater::Read(char* out, size_t cap) {
  size_t produced = 0;
  while (produced == 0 && cap > 0 && !finished_) {
    if (state_->block_state == ISAL_BLOCK_FINISH) {
      LS_ASSIGN_OR_RETURN(bool another, NextMember());
      if (!another) {
        finished_ = true;
        break;
      }
    }
    if (state_->avail_in == 0) LS_RETURN_IF_ERROR(Refill(0).status());
    // Called also with no input left: output that did not fit last time is still held inside.
    state_->next_out = reinterpret_cast<uint8_t*>(out);
    state_->avail_out = static_cast<uint32_t>(std::min<size_t>(cap, UINT32_MAX));
    int rc = isal_inflate(state_.get());
    if (rc < 0 || rc == ISAL_NEED_DICT) return Status::InvalidArgument("cannot decompress gzip: " + DescribeError(rc));
    produced = std::min<size_t>(cap, UINT32_MAX) - state_->avail_out;
    if (produced == 0 && state_->block_state != ISAL_BLOCK_FINISH && state_->avail_in == 0 && input_ended_) {
      return Status::InvalidArgument("gzip stream ends inside a member (truncated)");
    }
  }
  return produced;
}

}  // namespace layerstore
