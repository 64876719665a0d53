#include "object_writer.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "fsutil.h"
#include "layerstore/io.h"
#include "paths.h"

namespace layerstore {

// The temp file of a large content. Whoever drops the last reference (the importer on Abort, the
// writer thread after publishing or on cancel) removes it unless it was published.
struct ObjectWriter::LargeFile {
  explicit LargeFile(int root) : root_fd(root) {}
  ~LargeFile() {
    fd.Reset();
    if (!temp_name.empty()) ::unlinkat(root_fd, temp_name.c_str(), 0);
  }
  LargeFile(const LargeFile&) = delete;
  LargeFile& operator=(const LargeFile&) = delete;

  const int root_fd;
  UniqueFd fd;
  std::string temp_name;           // "" once published or removed
  std::string name;                // the entry, for messages
  uint64_t end = 0;                // writer thread: end of the last piece written
  std::atomic<bool> dropped{false};  // the importer abandoned it: skip its pending writes
};

struct ObjectWriter::Op {
  enum Kind { kSmall, kData, kLargeEnd } kind = kSmall;
  Digest digest;                    // kSmall, kLargeEnd
  std::string bytes;                // kSmall: the whole content; kData: one piece
  std::string name;                 // kSmall: the entry, for messages
  std::shared_ptr<LargeFile> file;  // kData, kLargeEnd
  uint64_t offset = 0;              // kData
  uint64_t size = 0;                // kLargeEnd: the content's size

  // What it holds in memory, for the queue bound (a fixed part so that empty files count too).
  size_t weight() const { return bytes.size() + name.size() + 128; }
};

ObjectWriter::ObjectWriter(int root_fd, std::function<bool(const Digest&)> known, Tuning tuning)
    : root_fd_(root_fd), known_(std::move(known)), tuning_(tuning) {}

ObjectWriter::~ObjectWriter() { Cancel(); }

// ---------------------------------------------------------------------------------------------
// Importer side

void ObjectWriter::StartThreads() {
  started_ = true;
  writer_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "strata-objects");  // named for perf and top
    WriterLoop();
  });
  flusher_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "strata-syncfs");
    FlusherLoop();
  });
}

Status ObjectWriter::Push(Op op) {
  if (!started_) StartThreads();
  size_t weight = op.weight();
  std::unique_lock<std::mutex> lock(mu_);
  // One op larger than the bound still goes, alone.
  auto room = [&] { return queued_bytes_ == 0 || queued_bytes_ + weight <= tuning_.queue_bytes || failed_; };
  if (!room()) {
    // Full: make sure the writer is working on it before waiting (it may be waiting for a batch).
    unsignalled_ = 0;
    work_cv_.notify_one();
    space_cv_.wait(lock, room);
  }
  if (failed_) return error_;
  queued_bytes_ += weight;
  queue_.push_back(std::move(op));
  // Wake the writer for a batch, not for every small file: a wake-up costs more than a write.
  if (writer_waiting_ && (++unsignalled_ >= 64 || queued_bytes_ >= (1 << 20))) {
    unsignalled_ = 0;
    work_cv_.notify_one();
  }
  return {};
}

Status ObjectWriter::Begin(uint64_t size, std::string_view name) {
  if (stopped_) return Status::FailedPrecondition("object writer already finished");
  Abort();
  name_ = name;
  size_ = size;
  pos_ = 0;
  memory_.clear();
  if (size <= kInMemoryMax) {
    memory_.reserve(size);
    return {};
  }
  auto file = std::make_shared<LargeFile>(root_fd_);
  LS_ASSIGN_OR_RETURN(file->fd, fsutil::CreateTemp(root_fd_, &file->temp_name));
  file->name = name_;
  large_ = std::move(file);
  return {};
}

Status ObjectWriter::FillHole(uint64_t upto) {
  static const std::vector<char> kZeros(64 << 10, 0);
  while (pos_ < upto) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(upto - pos_, kZeros.size()));
    hash_.Update(kZeros.data(), n);
    if (!large_) memory_.append(kZeros.data(), n);
    pos_ += n;
  }
  // In a temp file the hole stays a hole: the next write lands at its offset.
  return {};
}

Status ObjectWriter::Write(uint64_t offset, const void* data, size_t n) {
  if (offset < pos_ || offset + n > size_) {
    return Status::InvalidArgument("entry \"" + name_ + "\": data outside the file's declared size");
  }
  LS_RETURN_IF_ERROR(FillHole(offset));
  hash_.Update(data, n);
  if (large_) {
    Op op;
    op.kind = Op::kData;
    op.file = large_;
    op.offset = offset;
    op.bytes.assign(static_cast<const char*>(data), n);
    LS_RETURN_IF_ERROR(Push(std::move(op)));
  } else {
    memory_.append(static_cast<const char*>(data), n);
  }
  pos_ = offset + n;
  return {};
}

Result<Digest> ObjectWriter::Commit() {
  if (failed_) {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  LS_RETURN_IF_ERROR(FillHole(size_));
  Digest d = hash_.Finish();
  bool known = seen_.count(d) > 0 || known_(d);
  if (large_ && known) {
    // Its pieces still queued are skipped, and its temp file goes with the last reference.
    large_->dropped = true;
    large_.reset();
  } else if (large_) {
    Op op;
    op.kind = Op::kLargeEnd;
    op.digest = d;
    op.file = std::move(large_);
    op.size = size_;
    LS_RETURN_IF_ERROR(Push(std::move(op)));
  } else if (!known) {
    Op op;
    op.kind = Op::kSmall;
    op.digest = d;
    op.bytes = std::move(memory_);
    op.name = name_;
    memory_ = std::string();
    LS_RETURN_IF_ERROR(Push(std::move(op)));
  }
  seen_.insert(d);
  memory_.clear();
  return d;
}

void ObjectWriter::Abort() {
  if (large_) {
    large_->dropped = true;
    large_.reset();
  }
  memory_.clear();
  hash_.Finish();
}

void ObjectWriter::Stop(bool cancel) {
  if (stopped_) return;
  stopped_ = true;
  Abort();
  if (!started_) return;
  if (cancel) cancel_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    work_cv_.notify_one();
  }
  writer_.join();
  {
    std::lock_guard<std::mutex> lock(flush_mu_);
    flush_stop_ = true;
    flush_cv_.notify_one();
  }
  flusher_.join();
  finish_status_ = error_;
}

Status ObjectWriter::Finish() {
  Stop(false);
  return finish_status_;
}

void ObjectWriter::Cancel() { Stop(true); }

// ---------------------------------------------------------------------------------------------
// Writer thread

void ObjectWriter::WriterLoop() {
  std::deque<Op> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      writer_waiting_ = true;
      work_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      writer_waiting_ = false;
      unsignalled_ = 0;
      if (queue_.empty()) return;  // closing, and everything is done
      batch.swap(queue_);
    }
    // Room is given back to the importer as the batch is worked through, not only at its end.
    size_t done = 0;
    for (Op& op : batch) {
      if (!cancel_ && !failed_) {
        Status s = Run(op);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          if (error_.ok()) error_ = s;
          failed_ = true;
          space_cv_.notify_one();
        }
      }
      done += op.weight();
      op = Op();  // free its memory now
      if (done >= (1 << 20)) {
        std::lock_guard<std::mutex> lock(mu_);
        queued_bytes_ -= done;
        done = 0;
        space_cv_.notify_one();
      }
    }
    batch.clear();
    std::lock_guard<std::mutex> lock(mu_);
    queued_bytes_ -= done;
    space_cv_.notify_one();
  }
}

Status ObjectWriter::Run(Op& op) {
  switch (op.kind) {
    case Op::kSmall:
      return PublishSmall(op.digest, op.bytes, op.name);
    case Op::kData: {
      LargeFile& f = *op.file;
      if (f.dropped) return {};
      const char* p = op.bytes.data();
      size_t left = op.bytes.size();
      uint64_t off = op.offset;
      while (left > 0) {
        ssize_t w = ::pwrite(f.fd.get(), p, left, static_cast<off_t>(off));
        if (w < 0) {
          if (errno == EINTR) continue;
          return Status::FromErrno("writing object for \"" + f.name + "\"", errno);
        }
        p += w;
        left -= static_cast<size_t>(w);
        off += static_cast<uint64_t>(w);
      }
      f.end = off;
      return {};
    }
    case Op::kLargeEnd: {
      LargeFile& f = *op.file;
      // A hole at the end is made by setting the size (before writeback starts: truncating a
      // page under writeback waits for it).
      if (f.end < op.size && ::ftruncate(f.fd.get(), static_cast<off_t>(op.size)) != 0) {
        return Status::FromErrno("finishing object for \"" + f.name + "\"", errno);
      }
      if (::fchmod(f.fd.get(), 0444) != 0) return Status::FromErrno("chmod of object for \"" + f.name + "\"", errno);
      // Start writing the pages to disk now, without waiting, so that the syncfs before the
      // layer's commit finds less to do. (Per small file the extra call costs more than it saves.)
      ::sync_file_range(f.fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
      f.fd.Reset();
      LS_RETURN_IF_ERROR(PublishTemp(f.temp_name, op.digest, op.size));
      Written(op.size);  // its writeback already started, but a syncfs waits for it
      return {};
    }
  }
  return {};
}

void ObjectWriter::Created(const Digest& d, uint64_t size) {
  created_.push_back(d);
  new_bytes_ += size;
}

Result<bool> ObjectWriter::ExistingMatches(const std::string& path, const Digest& d) {
  UniqueFd fd(::openat(root_fd_, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    LS_ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.data(), buf.size(), path));
    if (n == 0) break;
    h.Update(buf.data(), n);
  }
  return h.Finish() == d;
}

Status ObjectWriter::PublishTemp(std::string& temp_name, const Digest& d, uint64_t size) {
  std::string path = paths::Object(d);
  if (::renameat2(root_fd_, temp_name.c_str(), root_fd_, path.c_str(), RENAME_NOREPLACE) == 0) {
    temp_name.clear();
    Created(d, size);
    return {};
  }
  if (errno != EEXIST) return Status::FromErrno("publishing object " + path, errno);
  // A file is there that the metadata does not vouch for: keep it only if it is whole. The
  // replacement is made durable before it takes the name: a short file may be another import's,
  // still being written, which will sync and commit a row naming it, and a crash must not then
  // find that name on a file whose data never reached the disk.
  LS_ASSIGN_OR_RETURN(bool good, ExistingMatches(path, d));
  if (good) return {};  // the caller removes the temp file
  LS_RETURN_IF_ERROR(fsutil::FsyncPath(root_fd_, temp_name));
  if (::renameat(root_fd_, temp_name.c_str(), root_fd_, path.c_str()) != 0) {
    return Status::FromErrno("replacing damaged object " + path, errno);
  }
  temp_name.clear();
  Created(d, size);
  return {};
}

// A small content is written straight under its name, created with O_EXCL: one directory
// operation. (Writing it to an unnamed O_TMPFILE and linking that into place, so that a name only
// ever shows whole content, cost ext4 an orphan-list insertion and removal more: 12 % more CPU
// per load, docs/benchmarks.md.) So a name may show a short content while it is written, or after
// a crash mid-write, but never one that a committed row names: the store syncs the file system
// before that commit. Whoever finds the name without having written it re-hashes the file before
// relying on it, and replaces a short one only with a copy made durable first (PublishTemp).
Status ObjectWriter::PublishSmall(const Digest& d, const std::string& bytes, const std::string& name) {
  std::string path = paths::Object(d);
  UniqueFd fd(::openat(root_fd_, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (fd) {
    Status s = fsutil::WriteAll(fd.get(), bytes.data(), bytes.size(), path);
    if (!s.ok()) {
      RemoveOwnFile(fd.get(), path);
      return s.WithContext("entry \"" + name + "\"");
    }
    Created(d, bytes.size());
  } else {
    if (errno != EEXIST) return Status::FromErrno("creating object " + path + " for \"" + name + "\"", errno);
    LS_ASSIGN_OR_RETURN(bool good, ExistingMatches(path, d));
    if (good) return {};  // another import's, whole: nothing made dirty here
    std::string temp_name;
    LS_ASSIGN_OR_RETURN(UniqueFd temp, fsutil::CreateTemp(root_fd_, &temp_name));
    Status s = fsutil::WriteAll(temp.get(), bytes.data(), bytes.size(), path);
    if (s.ok() && ::fchmod(temp.get(), 0444) != 0) s = Status::FromErrno("chmod " + temp_name, errno);
    temp.Reset();
    if (s.ok()) s = PublishTemp(temp_name, d, bytes.size());
    if (!temp_name.empty()) ::unlinkat(root_fd_, temp_name.c_str(), 0);
    if (!s.ok()) return s.WithContext("entry \"" + name + "\"");
  }
  // A small file counts a block more: its inode and allocation are what syncfs spends time on.
  Written(bytes.size() + 4096);
  return {};
}

// Removes the short file a failed write left under `path`, unless another import has replaced it
// meanwhile with a whole one (which this one's unlink must not take away).
void ObjectWriter::RemoveOwnFile(int fd, const std::string& path) {
  struct stat own, named;
  if (::fstat(fd, &own) == 0 && ::fstatat(root_fd_, path.c_str(), &named, AT_SYMLINK_NOFOLLOW) == 0 &&
      own.st_ino == named.st_ino && own.st_dev == named.st_dev) {
    ::unlinkat(root_fd_, path.c_str(), 0);
  }
}

void ObjectWriter::Written(uint64_t bytes) {
  unflushed_bytes_ += bytes;
  if (unflushed_bytes_ < tuning_.flush_bytes) return;
  unflushed_bytes_ = 0;
  std::lock_guard<std::mutex> lock(flush_mu_);
  flush_wanted_ = true;
  flush_cv_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// Flusher thread: one syncfs at a time, requests made meanwhile coalesce into the next one.
// Errors are left to the store's own syncfs, which decides whether the layer commits.

void ObjectWriter::FlusherLoop() {
  std::unique_lock<std::mutex> lock(flush_mu_);
  for (;;) {
    flush_cv_.wait(lock, [&] { return flush_wanted_ || flush_stop_; });
    if (flush_stop_) return;
    flush_wanted_ = false;
    lock.unlock();
    ::syncfs(root_fd_);
    lock.lock();
  }
}

}  // namespace layerstore
