#include "registry/compress.h"

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace registry {
namespace {

using layerstore::Result;
using layerstore::Status;

constexpr size_t kOutChunk = 256 << 10;

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};

// Block-parallel gzip, the way pigz does it: the input is cut into fixed blocks, each block is
// deflated on its own (primed with the previous block's last 32 KiB as dictionary, so the ratio
// barely suffers) and ends on a byte boundary (a sync flush), so the blocks' outputs concatenate
// into one deflate stream; the CRCs combine with crc32_combine. The bytes depend only on the
// input, the block size, the level and the deflate library — not on the number of threads or
// their timing — so a layer recompressed twice has one digest. Gzip is the upload bottleneck:
// zlib's level 6 ran at ~30 MB/s per core here; ISA-L's level 3 deflates the same layer tars 4x
// faster into output 2-4 % larger (docs/benchmarks.md, "Registry"), and this uses every core.
class ParallelGzip {
 public:
  static constexpr size_t kBlock = 1 << 20;
  static constexpr size_t kWindow = 32 << 10;
  static constexpr uint32_t kLevel = 3;
  static constexpr uint32_t kLevelBuffer = ISAL_DEF_LVL3_DEFAULT;

  explicit ParallelGzip(CompressingSink::Output output) : output_(std::move(output)) {
    unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~ParallelGzip() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    // jthreads join here, after the workers saw stopping_.
  }
  ParallelGzip(const ParallelGzip&) = delete;
  ParallelGzip& operator=(const ParallelGzip&) = delete;

  Status Write(const char* data, size_t size) {
    if (!started_) {
      started_ = true;
      // RFC 1952 header as zlib writes it: no name, mtime 0, XFL 0, OS 3 (Unix).
      static const char kHeader[10] = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, 3};
      LS_RETURN_IF_ERROR(output_(kHeader, sizeof kHeader));
    }
    while (size > 0) {
      size_t take = std::min(size, kBlock - pending_.size());
      pending_.append(data, take);
      data += take;
      size -= take;
      if (pending_.size() == kBlock) LS_RETURN_IF_ERROR(Submit(false));
    }
    return {};
  }

  Status Finish() {
    if (!started_) LS_RETURN_IF_ERROR(Write(nullptr, 0));
    LS_RETURN_IF_ERROR(Submit(true));
    LS_RETURN_IF_ERROR(Drain(0));
    char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<char>((crc_ >> (8 * i)) & 0xff);
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<char>((total_ >> (8 * i)) & 0xff);
    return output_(trailer, sizeof trailer);
  }

 private:
  struct Job {
    std::string input, dictionary, output;
    bool last = false;
    bool done = false;
    uLong crc = 0;
    Status status;
  };

  // Queues the pending block; emits finished blocks so that at most 2 per worker are in flight.
  Status Submit(bool last) {
    auto job = std::make_shared<Job>();
    job->dictionary = std::move(window_);
    window_ = pending_.size() >= kWindow ? pending_.substr(pending_.size() - kWindow)
                                         : job->dictionary.substr(job->dictionary.size() -
                                                                  std::min(job->dictionary.size(), kWindow - pending_.size())) +
                                               pending_;
    job->input = std::move(pending_);
    pending_.clear();
    job->last = last;
    total_ += job->input.size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      order_.push_back(job);
      queue_.push_back(job);
    }
    work_cv_.notify_one();
    return Drain(workers_.size() * 2);
  }

  // Emits finished blocks in order until at most `keep` are outstanding.
  Status Drain(size_t keep) {
    std::unique_lock<std::mutex> lock(mu_);
    while (order_.size() > keep) {
      std::shared_ptr<Job> job = order_.front();
      done_cv_.wait(lock, [&] { return job->done; });
      order_.pop_front();
      lock.unlock();
      LS_RETURN_IF_ERROR(job->status);
      crc_ = crc32_combine(crc_, job->crc, static_cast<z_off_t>(job->input.size()));
      if (!job->output.empty()) LS_RETURN_IF_ERROR(output_(job->output.data(), job->output.size()));
      lock.lock();
    }
    return {};
  }

  void Work() {
    std::vector<uint8_t> level_buffer(kLevelBuffer);
    auto stream = std::make_unique<isal_zstream>();
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = queue_.front();
        queue_.pop_front();
      }
      Compress(*job, *stream, level_buffer);
      {
        std::lock_guard<std::mutex> lock(mu_);
        job->done = true;
      }
      done_cv_.notify_all();
    }
  }

  static void Compress(Job& job, isal_zstream& zs, std::vector<uint8_t>& level_buffer) {
    auto* in = reinterpret_cast<uint8_t*>(job.input.data());
    job.crc = crc32_gzip_refl(0, in, job.input.size());
    // Raw deflate: the gzip framing is written once, around all blocks.
    isal_deflate_init(&zs);
    zs.level = kLevel;
    zs.level_buf = level_buffer.data();
    zs.level_buf_size = static_cast<uint32_t>(level_buffer.size());
    zs.gzip_flag = IGZIP_DEFLATE;
    if (!job.dictionary.empty() &&
        isal_deflate_set_dict(&zs, reinterpret_cast<uint8_t*>(job.dictionary.data()),
                              static_cast<uint32_t>(job.dictionary.size())) != COMP_OK) {
      job.status = Status::IOError("gzip compression: cannot set the dictionary");
      return;
    }
    zs.next_in = in;
    zs.avail_in = static_cast<uint32_t>(job.input.size());
    zs.end_of_stream = job.last ? 1 : 0;
    zs.flush = job.last ? NO_FLUSH : SYNC_FLUSH;
    // Incompressible input grows by a few bytes per 64 KiB stored block.
    job.output.resize(job.input.size() + job.input.size() / 16 + 1024);
    size_t written = 0;
    for (;;) {
      zs.next_out = reinterpret_cast<uint8_t*>(job.output.data() + written);
      zs.avail_out = static_cast<uint32_t>(job.output.size() - written);
      int rc = isal_deflate(&zs);
      written = job.output.size() - zs.avail_out;
      if (rc != COMP_OK) {
        job.status = Status::IOError("gzip compression failed (ISA-L error " + std::to_string(rc) + ")");
        return;
      }
      bool done = job.last ? zs.internal_state.state == ZSTATE_END
                           : zs.avail_in == 0 && zs.internal_state.state == ZSTATE_NEW_HDR;
      if (done) break;
      if (zs.avail_out == 0) job.output.resize(job.output.size() * 2);
    }
    job.output.resize(written);
  }

  CompressingSink::Output output_;
  bool started_ = false;
  std::string pending_;  // input of the block being filled
  std::string window_;   // the last 32 KiB of input before pending_
  uLong crc_ = 0;
  uint64_t total_ = 0;

  std::mutex mu_;  // guards the queues, stopping_ and Job::done
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // not yet taken by a worker
  std::deque<std::shared_ptr<Job>> order_;  // submitted, not yet emitted, in input order
  bool stopping_ = false;
  std::vector<std::jthread> workers_;  // last: joined first on destruction
};

}  // namespace

Result<Compression> ParseCompression(std::string_view name) {
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  return Status::InvalidArgument("unsupported compression format \"" + std::string(name) + "\" (use gzip or zstd)");
}

std::string_view CompressionName(Compression c) { return c == Compression::kGzip ? "gzip" : "zstd"; }

struct CompressingSink::Impl {
  Compression kind;
  Output output;
  std::vector<char> out = std::vector<char>(kOutChunk);
  std::unique_ptr<ParallelGzip> gzip;
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx;

  Status Zstd(const void* data, size_t size, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, size, 0};
    for (;;) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t left = ZSTD_compressStream2(cctx.get(), &ob, &in, mode);
      if (ZSTD_isError(left)) return Status::IOError(std::string("zstd compression failed: ") + ZSTD_getErrorName(left));
      if (ob.pos > 0) LS_RETURN_IF_ERROR(output(out.data(), ob.pos));
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return {};
    }
  }
};

CompressingSink::CompressingSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompressingSink::~CompressingSink() = default;

Result<std::unique_ptr<CompressingSink>> CompressingSink::Create(Compression compression, Output output) {
  auto impl = std::make_unique<Impl>();
  impl->kind = compression;
  impl->output = std::move(output);
  if (compression == Compression::kGzip) {
    impl->gzip = std::make_unique<ParallelGzip>(impl->output);
  } else {
    impl->cctx.reset(ZSTD_createCCtx());
    if (!impl->cctx) return Status::IOError("cannot initialise zstd compression");
    ZSTD_CCtx_setParameter(impl->cctx.get(), ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(impl->cctx.get(), ZSTD_c_checksumFlag, 0);
  }
  return std::unique_ptr<CompressingSink>(new CompressingSink(std::move(impl)));
}

Status CompressingSink::Write(const void* data, size_t size) {
  if (size == 0) return {};
  if (impl_->kind == Compression::kGzip) return impl_->gzip->Write(static_cast<const char*>(data), size);
  return impl_->Zstd(data, size, ZSTD_e_continue);
}

Status CompressingSink::Finish() {
  if (impl_->kind == Compression::kGzip) return impl_->gzip->Finish();
  return impl_->Zstd(nullptr, 0, ZSTD_e_end);
}

}  // namespace registry
