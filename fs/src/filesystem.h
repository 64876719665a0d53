// Filesystem: the read path of stratafs over a RootfsIndex, free of fuse_req_t so it can be
// driven by tests directly. Inode numbers are index node ids + 1 (the root is FUSE_ROOT_ID), so
// they are stable across lookups and remounts and need no table: nothing is allocated per lookup
// and forget has nothing to free. Immutable after construction; every method is thread-safe.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layerstore/rootfs.h"
#include "layerstore/store.h"

namespace layerfs {

using layerstore::Result;
using layerstore::Status;

class Filesystem {
 public:
  // Takes ownership of both. REQUIRES: index belongs to store.
  Filesystem(std::unique_ptr<layerstore::Store> store, std::unique_ptr<layerstore::RootfsIndex> index);

  static uint64_t InoOf(uint32_t node) { return uint64_t{node} + 1; }

  // errno-style results: 0 or a positive errno, outputs through pointers.
  int GetAttr(uint64_t ino, struct stat* st) const;
  int Lookup(uint64_t parent, const char* name, uint64_t* ino, struct stat* st) const;
  int ReadLink(uint64_t ino, std::string* target) const;
  // An fd on the file's content; the caller owns it.
  int Open(uint64_t ino, int* fd) const;
  // Children of a directory by position; *count receives the number of children.
  int ChildCount(uint64_t dir, uint32_t* count) const;
  int Child(uint64_t dir, uint32_t i, std::string_view* name, uint64_t* ino) const;
  int Parent(uint64_t dir, uint64_t* parent) const;
  int GetXattr(uint64_t ino, const char* name, std::string* value) const;
  int ListXattr(uint64_t ino, std::string* names) const;  // NUL-separated
  int StatFs(struct statvfs* st) const;

 private:
  int Node(uint64_t ino, uint32_t* node) const;
  std::unique_ptr<layerstore::Store> store_;
  std::unique_ptr<layerstore::RootfsIndex> index_;
};

}  // namespace layerfs
