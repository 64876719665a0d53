// PassthroughFiles' choice of io mode per inode, driven without a FUSE connection: an fd that is
// not /dev/fuse makes every backing-file registration fail as a kernel without passthrough
// would (ENOTTY), so what is checked is the bookkeeping around it. The passthrough side itself
// (a registered backing file, its sharing and release) needs a mount: test_mount.sh,
// test_union.sh and test_overlay_dirs.sh check it by its effect on the backing file's page cache.
#include "passthrough.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "layerstore/unique_fd.h"

namespace layerfs {
namespace {

class PassthroughFilesTest : public ::testing::Test {
 protected:
  layerstore::UniqueFd not_fuse_{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  layerstore::UniqueFd content_{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
};

TEST_F(PassthroughFilesTest, NoContentMeansCachedAndDoesNotRefuse) {
  ASSERT_TRUE(not_fuse_ && content_);
  PassthroughFiles files(not_fuse_.get());
  int32_t id = -1;
  EXPECT_EQ(IoMode::kCached, files.Open(7, -1, &id));
  EXPECT_FALSE(files.refused());  // nothing was asked of the kernel
  files.Release(7, IoMode::kCached);
}

TEST_F(PassthroughFilesTest, CachedOpensKeepLaterOpensCached) {
  PassthroughFiles files(not_fuse_.get());
  int32_t id = -1;
  ASSERT_EQ(IoMode::kCached, files.Open(7, -1, &id));
  // A content fd now would be registered, but the inode is in cached mode: the kernel would
  // refuse a passthrough open of it (ETXTBSY), so none is tried.
  EXPECT_EQ(IoMode::kCached, files.Open(7, content_.get(), &id));
  EXPECT_FALSE(files.refused());
  files.Release(7, IoMode::kCached);
  EXPECT_EQ(IoMode::kCached, files.Open(7, content_.get(), &id));
  EXPECT_FALSE(files.refused());  // one cached open is still there
  files.Release(7, IoMode::kCached);
  files.Release(7, IoMode::kCached);
  // No open left: the next one tries to register its content, which this fd refuses.
  EXPECT_EQ(IoMode::kCached, files.Open(7, content_.get(), &id));
  EXPECT_TRUE(files.refused());
}

TEST_F(PassthroughFilesTest, RefusalHoldsForEveryInode) {
  PassthroughFiles files(not_fuse_.get());
  int32_t id = -1;
  EXPECT_EQ(IoMode::kCached, files.Open(1, content_.get(), &id));
  ASSERT_TRUE(files.refused());
  EXPECT_EQ(IoMode::kCached, files.Open(2, content_.get(), &id));
  files.Release(1, IoMode::kCached);
  files.Release(2, IoMode::kCached);
  files.Release(3, IoMode::kPassthrough);  // an unknown inode: nothing happens
}

}  // namespace
}  // namespace layerfs
