// FUSE over io_uring (Linux 6.14+, while the fuse module's enable_uring parameter is on): the
// kernel hands each request to the ring queue of the CPU its caller runs on, and a worker pinned
// to that CPU answers it. A round trip then costs a wake-up on one CPU (about 7 us on these VMs)
// instead of one across CPUs (70-110 us when the host is busy), and one io_uring_enter instead of
// a read and a writev of /dev/fuse.
//
// libfuse 3.14 (Debian 12) predates it. Requests taken from a ring are handed to
// fuse_session_process_buf as if read from /dev/fuse, and the replies libfuse then writes are
// caught by a custom io (fuse_session_custom_io) and committed to the ring entry they answer.
// FORGET and INTERRUPT still come through /dev/fuse, so the session loop keeps running beside
// the rings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "layerstore/unique_fd.h"

namespace layerfs {

// FUSE_OVER_IO_URING, an init flag of flags2 (protocol 7.42).
inline constexpr uint64_t kFuseOverIoUring = 1ULL << 41;

// Whether the kernel will offer FUSE over io_uring to new mounts: its fuse module's
// enable_uring parameter. When it is off and this process may write it (root), turns it on, as
// dockerd turns on the sysctls it needs: the parameter only lets each FUSE server ask for the
// rings in its FUSE_INIT reply, and a server that does not ask is served as before.
bool EnableKernelUring();

// The workers: two per possible CPU, each with its own ring and one entry in that CPU's queue
// (the kernel's queue ids are CPU numbers, and it uses no ring until every queue has an entry).
class UringTransport {
 public:
  // Creates every worker's ring, and routes libfuse's replies through the custom io (those to
  // ring requests to their entries, the rest to /dev/fuse as before). Call after
  // fuse_session_mount and before FUSE_INIT: the reply may offer the rings only once they exist,
  // since from that reply on the kernel holds every request until all queues are registered.
  // Null and *error when a ring cannot be made; the session is then untouched.
  static std::unique_ptr<UringTransport> Prepare(fuse_session* se, std::string* error);

  // FUSE_INIT granted the rings: registers the entries (payload buffers of max_payload bytes, the
  // largest request or reply of the connection) and serves. A queue the kernel refuses makes it
  // drop the rings for the whole connection and go on through /dev/fuse.
  void Start(size_t max_payload);

  // Stops the workers and waits for them. Call once the mount is gone (its requests are then
  // answered ENOTCONN by the kernel), or when FUSE_INIT did not grant the rings.
  ~UringTransport();

  UringTransport(const UringTransport&) = delete;
  UringTransport& operator=(const UringTransport&) = delete;

  struct Worker;

 private:
  UringTransport() = default;

  layerstore::UniqueFd stop_;  // an eventfd every ring polls
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace layerfs
