// Which raw requests ask the daemon to clear setuid/setgid under FUSE_HANDLE_KILLPRIV_V2: the
// parse of the per-opcode structs the transport hands to RequestKillsSuidgid. Its effect on a
// mount is checked by test_union.sh against kernel overlayfs.
#include "killpriv.h"

#include <fcntl.h>
#include <linux/fuse.h>

#include <thread>

#include <gtest/gtest.h>

namespace layerfs {
namespace {

TEST(KillprivTest, WriteFlag) {
  fuse_write_in in{};
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_WRITE, &in, sizeof in));
  in.write_flags = FUSE_WRITE_CACHE;
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_WRITE, &in, sizeof in));
  in.write_flags |= FUSE_WRITE_KILL_SUIDGID;
  EXPECT_TRUE(RequestKillsSuidgid(FUSE_WRITE, &in, sizeof in));
  // A struct shorter than the protocol's (an older kernel's, or a damaged request) asks nothing.
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_WRITE, &in, sizeof in - 8));
}

TEST(KillprivTest, TruncatingSetattr) {
  fuse_setattr_in in{};
  in.valid = FATTR_SIZE;
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_SETATTR, &in, sizeof in));
  in.valid |= FATTR_KILL_SUIDGID;
  EXPECT_TRUE(RequestKillsSuidgid(FUSE_SETATTR, &in, sizeof in));
}

TEST(KillprivTest, OpenAndCreateFlags) {
  fuse_open_in open{};
  open.flags = O_WRONLY | O_TRUNC;
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_OPEN, &open, sizeof open));
  open.open_flags = FUSE_OPEN_KILL_SUIDGID;
  EXPECT_TRUE(RequestKillsSuidgid(FUSE_OPEN, &open, sizeof open));
  // Before protocol 7.33 the field was unused and the struct as long: its size proves nothing.
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_OPEN, &open, 4));
  fuse_create_in create{};
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_CREATE, &create, sizeof create));
  create.open_flags = FUSE_OPEN_KILL_SUIDGID;
  EXPECT_TRUE(RequestKillsSuidgid(FUSE_CREATE, &create, sizeof create));
}

TEST(KillprivTest, OtherOpcodesNever) {
  // The same bit at the same place means nothing for another request.
  fuse_write_in in{};
  in.write_flags = FUSE_WRITE_KILL_SUIDGID;
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_READ, &in, sizeof in));
  EXPECT_FALSE(RequestKillsSuidgid(FUSE_FALLOCATE, &in, sizeof in));
}

TEST(KillprivTest, RequestReadFromTheDevice) {
  struct {
    fuse_in_header in;
    fuse_write_in write;
  } request{};
  request.in.opcode = FUSE_WRITE;
  request.in.len = sizeof request;
  request.write.write_flags = FUSE_WRITE_KILL_SUIDGID;
  NoteRequestRead(&request, sizeof request);
  EXPECT_TRUE(CurrentRequestKillsSuidgid());
  request.write.write_flags = 0;
  NoteRequestRead(&request, sizeof request);
  EXPECT_FALSE(CurrentRequestKillsSuidgid()) << "each request read sets the flag anew";
  request.write.write_flags = FUSE_WRITE_KILL_SUIDGID;
  request.in.opcode = FUSE_FORGET;
  NoteRequestRead(&request, sizeof request);
  EXPECT_FALSE(CurrentRequestKillsSuidgid());
}

TEST(KillprivTest, CurrentRequestIsPerThread) {
  SetCurrentRequestKillsSuidgid(true);
  bool other = true;
  std::thread([&] { other = CurrentRequestKillsSuidgid(); }).join();
  EXPECT_FALSE(other);
  EXPECT_TRUE(CurrentRequestKillsSuidgid());
  SetCurrentRequestKillsSuidgid(false);
  EXPECT_FALSE(CurrentRequestKillsSuidgid());
}

}  // namespace
}  // namespace layerfs
