// Filesystem: the read path of stratafs over a Lower (a store image or directory layers), free of
// fuse_req_t so it can be driven by tests directly. Inode numbers are lower node ids + 1 (the root
// is FUSE_ROOT_ID), so they need no table: nothing is allocated per lookup and forget has nothing
// to free. Files need no open either: the content fd of a node is opened at its first read and
// kept (up to a bound), so the kernel can skip OPEN and RELEASE round trips.
// Every method is thread-safe.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attr_policy.h"
#include "lower.h"

namespace layerfs {

using layerstore::Result;
using layerstore::Status;

class Filesystem {
 public:
  explicit Filesystem(std::unique_ptr<Lower> lower, AttrPolicy policy = {});
  ~Filesystem();

  static uint64_t InoOf(uint32_t node) { return uint64_t{node} + 1; }

  // errno-style results: 0 or a positive errno, outputs through pointers.
  int GetAttr(uint64_t ino, struct stat* st) const;
  int Lookup(uint64_t parent, const char* name, uint64_t* ino, struct stat* st) const;
  int ReadLink(uint64_t ino, std::string* target) const;
  // An fd on the file's content. *owned: the caller must close it (the cache was full);
  // otherwise the fd stays the Filesystem's.
  int ContentFd(uint64_t ino, int* fd, bool* owned);
  // Children of a directory by position; *count receives the number of children.
  int ChildCount(uint64_t dir, uint32_t* count) const;
  int Child(uint64_t dir, uint32_t i, std::string_view* name, uint64_t* ino) const;
  int Parent(uint64_t dir, uint64_t* parent) const;
  int GetXattr(uint64_t ino, const char* name, std::string* value) const;
  int ListXattr(uint64_t ino, std::string* names) const;  // NUL-separated
  int StatFs(struct statvfs* st) const;

 private:
  int Node(uint64_t ino, uint32_t* node) const;
  std::unique_ptr<Lower> lower_;
  const layerstore::RootfsIndex& index_;
  AttrPolicy policy_;
};

}  // namespace layerfs
