#include "object_writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "fsutil.h"
#include "paths.h"

namespace layerstore {

ObjectWriter::ObjectWriter(int root_fd, std::function<bool(const Digest&)> known)
    : root_fd_(root_fd), known_(std::move(known)) {}

ObjectWriter::~ObjectWriter() { Abort(); }

Status ObjectWriter::Begin(uint64_t size, std::string_view name) {
  Abort();
  name_ = name;
  size_ = size;
  pos_ = 0;
  memory_.clear();
  if (size <= kInMemoryMax) {
    memory_.reserve(size);
    return {};
  }
  LS_ASSIGN_OR_RETURN(temp_fd_, fsutil::CreateTemp(root_fd_, &temp_name_));
  return {};
}

Status ObjectWriter::FillHole(uint64_t upto) {
  static const std::vector<char> kZeros(64 << 10, 0);
  while (pos_ < upto) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(upto - pos_, kZeros.size()));
    hash_.Update(kZeros.data(), n);
    if (!temp_fd_) memory_.append(kZeros.data(), n);
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
  if (temp_fd_) {
    const char* p = static_cast<const char*>(data);
    size_t left = n;
    uint64_t off = offset;
    while (left > 0) {
      ssize_t w = ::pwrite(temp_fd_.get(), p, left, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("writing object for \"" + name_ + "\"", errno);
      }
      p += w;
      left -= static_cast<size_t>(w);
      off += static_cast<uint64_t>(w);
    }
  } else {
    memory_.append(static_cast<const char*>(data), n);
  }
  pos_ = offset + n;
  return {};
}

Result<bool> ObjectWriter::ExistingMatches(const std::string& path, const Digest& d) {
  UniqueFd fd(::openat(root_fd_, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno("opening " + path, errno);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    LS_ASSIGN_OR_RETURN(size_t n, fsutil::ReadFull(fd.get(), buf.data(), buf.size(), path));
    if (n == 0) break;
    h.Update(buf.data(), n);
  }
  return h.Finish() == d;
}

Status ObjectWriter::Publish(const Digest& d, bool* created) {
  std::string path = paths::Object(d);
  if (::renameat2(root_fd_, temp_name_.c_str(), root_fd_, path.c_str(), RENAME_NOREPLACE) == 0) {
    *created = true;
    created_.push_back(d);
    temp_name_.clear();
    return {};
  }
  if (errno != EEXIST) return Status::FromErrno("publishing object " + path, errno);
  // A file is there that the metadata does not vouch for: keep it only if it is whole.
  LS_ASSIGN_OR_RETURN(bool good, ExistingMatches(path, d));
  if (!good && ::renameat(root_fd_, temp_name_.c_str(), root_fd_, path.c_str()) != 0) {
    return Status::FromErrno("replacing damaged object " + path, errno);
  }
  if (good) ::unlinkat(root_fd_, temp_name_.c_str(), 0);
  temp_name_.clear();
  *created = !good;
  if (!good) created_.push_back(d);
  return {};
}

// Starts writing a large file's pages to disk now, without waiting, so that the one syncfs before
// the layer's commit finds less to do: the disk works while the import goes on. (Per small file
// the extra system call costs more than it saves.)
void ObjectWriter::StartWriteback(int fd) { ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

// A small content's digest is known before it is written, so it goes straight to its final name:
// no temp file, no rename. A crash mid-write leaves a short file there that no record names; the
// next writer of that content finds it unvouched-for, re-hashes it and replaces it.
Status ObjectWriter::PublishSmall(const Digest& d, bool* created) {
  std::string path = paths::Object(d);
  UniqueFd fd(::openat(root_fd_, path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd) {
    if (errno != EEXIST) return Status::FromErrno("creating object " + path, errno);
    LS_ASSIGN_OR_RETURN(bool good, ExistingMatches(path, d));
    if (good) return {};
    LS_ASSIGN_OR_RETURN(UniqueFd temp, fsutil::CreateTemp(root_fd_, &temp_name_));
    LS_RETURN_IF_ERROR(fsutil::WriteAll(temp.get(), memory_.data(), memory_.size(), path));
    if (::fchmod(temp.get(), 0444) != 0) return Status::FromErrno("chmod " + temp_name_, errno);
    if (::renameat(root_fd_, temp_name_.c_str(), root_fd_, path.c_str()) != 0) {
      return Status::FromErrno("replacing damaged object " + path, errno);
    }
    temp_name_.clear();
  } else {
    Status s = fsutil::WriteAll(fd.get(), memory_.data(), memory_.size(), path);
    if (!s.ok()) {
      ::unlinkat(root_fd_, path.c_str(), 0);
      return s;
    }
  }
  *created = true;
  created_.push_back(d);
  return {};
}

Result<Digest> ObjectWriter::Commit(bool* created) {
  *created = false;
  LS_RETURN_IF_ERROR(FillHole(size_));
  Digest d = hash_.Finish();
  bool already = seen_.count(d) > 0 || known_(d);
  if (temp_fd_) {
    StartWriteback(temp_fd_.get());
    if (::ftruncate(temp_fd_.get(), static_cast<off_t>(size_)) != 0 || ::fchmod(temp_fd_.get(), 0444) != 0) {
      return Status::FromErrno("finishing object for \"" + name_ + "\"", errno);
    }
    temp_fd_.Reset();
    if (already) {
      ::unlinkat(root_fd_, temp_name_.c_str(), 0);
      temp_name_.clear();
    } else {
      LS_RETURN_IF_ERROR(Publish(d, created));
    }
  } else if (!already) {
    LS_RETURN_IF_ERROR(PublishSmall(d, created));
  }
  seen_.insert(d);
  memory_.clear();
  return d;
}

void ObjectWriter::Abort() {
  temp_fd_.Reset();
  if (!temp_name_.empty()) {
    ::unlinkat(root_fd_, temp_name_.c_str(), 0);
    temp_name_.clear();
  }
  hash_.Finish();
}

}  // namespace layerstore
