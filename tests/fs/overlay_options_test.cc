// stratafs' fuse-overlayfs command line: each option's effect on MountOptions, the errors that
// name the bad option, several -o values, and the argv mount.fuse3 hands a helper
// (`stratafs SOURCE MOUNTPOINT -o rw,...,dev,suid`, as observed with util-linux 2.38 and
// libfuse 3.14; see stratafs(1)).
#include "overlay_options.h"

#include <gtest/gtest.h>

namespace layerfs {
namespace {

struct Parsed {
  layerstore::Status status;
  MountOptions options;
};

Parsed Parse(std::vector<std::string> groups) {
  Parsed p;
  p.status = ParseOverlayOptions(groups, &p.options);
  return p;
}

::testing::AssertionResult Mentions(const std::string& message, const std::string& needle) {
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << message << "' does not mention '" << needle << "'";
}

// Parses `extra` after a minimal valid lowerdir=, and expects success.
MountOptions ParseOk(const std::string& extra) {
  Parsed p = Parse({"lowerdir=/l," + extra});
  EXPECT_TRUE(p.status.ok()) << extra << ": " << p.status.ToString();
  return p.options;
}

// Expects `groups` to fail with InvalidArgument mentioning `needle`.
void ExpectError(std::vector<std::string> groups, const std::string& needle) {
  Parsed p = Parse(groups);
  ASSERT_FALSE(p.status.ok()) << groups.front();
  EXPECT_EQ(p.status.code(), layerstore::Code::kInvalidArgument);
  EXPECT_TRUE(Mentions(p.status.message(), needle)) << groups.front();
}

bool operator==(const IdMapping& a, const IdMapping& b) {
  return a.inside == b.inside && a.outside == b.outside && a.count == b.count;
}

TEST(OverlayOptionsTest, LowerUpperWork) {
  Parsed p = Parse({"lowerdir=/top:/mid:rel/bottom,upperdir=/u,workdir=/w"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.options.lower_dirs, (std::vector<std::string>{"/top", "/mid", "rel/bottom"}));
  EXPECT_EQ(p.options.upper_dir, "/u");
  EXPECT_EQ(p.options.work_dir, "/w");
  EXPECT_FALSE(p.options.read_only);
  EXPECT_TRUE(p.options.overlay.sync);
  EXPECT_TRUE(p.options.overlay.fuse_options.empty());
  EXPECT_FALSE(p.options.overlay.squash_uid);
  EXPECT_TRUE(p.options.store_root.empty());
}

TEST(OverlayOptionsTest, WithoutUpperDirTheMountIsReadOnly) {
  Parsed p = Parse({"rw,lowerdir=/a"});
  ASSERT_TRUE(p.status.ok());
  EXPECT_TRUE(p.options.read_only);
  EXPECT_TRUE(p.options.upper_dir.empty());
}

TEST(OverlayOptionsTest, RoAndRwLastOneWins) {
  EXPECT_TRUE(ParseOk("upperdir=/u,workdir=/w,ro").read_only);
  EXPECT_FALSE(ParseOk("upperdir=/u,workdir=/w,ro,rw").read_only);
  EXPECT_TRUE(ParseOk("rw,upperdir=/u,workdir=/w,ro").read_only);
}

TEST(OverlayOptionsTest, SeveralDashO) {
  Parsed p = Parse({"lowerdir=/a", "upperdir=/u", "workdir=/w,allow_other", "squash_to_uid=7,nodev"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.options.lower_dirs, std::vector<std::string>{"/a"});
  EXPECT_EQ(p.options.upper_dir, "/u");
  EXPECT_EQ(p.options.work_dir, "/w");
  EXPECT_EQ(p.options.overlay.squash_uid, 7u);
  EXPECT_EQ(p.options.overlay.fuse_options, (std::vector<std::string>{"allow_other", "nodev"}));
}

TEST(OverlayOptionsTest, LaterValueWins) {
  Parsed p = Parse({"lowerdir=/a,upperdir=/u1,workdir=/w", "lowerdir=/b:/c,upperdir=/u2"});
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.options.lower_dirs, (std::vector<std::string>{"/b", "/c"}));
  EXPECT_EQ(p.options.upper_dir, "/u2");
}

TEST(OverlayOptionsTest, BackslashEscapesAComma) {
  Parsed p = Parse({R"(lowerdir=/a\,b:/c,upperdir=/u\\x,workdir=/w)"});
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.options.lower_dirs, (std::vector<std::string>{"/a,b", "/c"}));
  EXPECT_EQ(p.options.upper_dir, R"(/u\x)");
}

TEST(OverlayOptionsTest, QuotedCommasDoNotSplit) {
  // containers/storage's SELinux label: one option, accepted and ignored.
  MountOptions o = ParseOk(R"(context="system_u:object_r:container_file_t:s0:c1,c2",nodev)");
  EXPECT_EQ(o.overlay.fuse_options, std::vector<std::string>{"nodev"});
  ExpectError({R"(lowerdir=/a,context="x:c1,c2)"}, "unbalanced");
}

TEST(OverlayOptionsTest, EmptyOptionsAreSkipped) {
  Parsed p = Parse({",lowerdir=/a,,", ""});
  EXPECT_TRUE(p.status.ok()) << p.status.ToString();
}

TEST(OverlayOptionsTest, IdMappingsAreOnDiskInMountCount) {
  // fuse-overlayfs' example: on-disk 0 shows as 1000, on-disk 1.. as 100000..
  MountOptions o = ParseOk("uidmapping=0:1000:1:1:100000:65536,gidmapping=0:2000:10");
  ASSERT_EQ(o.overlay.uid_mappings.size(), 2u);
  EXPECT_TRUE((o.overlay.uid_mappings[0] == IdMapping{.inside = 1000, .outside = 0, .count = 1}));
  EXPECT_TRUE((o.overlay.uid_mappings[1] == IdMapping{.inside = 100000, .outside = 1, .count = 65536}));
  ASSERT_EQ(o.overlay.gid_mappings.size(), 1u);
  EXPECT_TRUE((o.overlay.gid_mappings[0] == IdMapping{.inside = 2000, .outside = 0, .count = 10}));
  EXPECT_TRUE(ParseOk("uidmapping=0:0:4294967295").overlay.uid_mappings.size() == 1);
}

TEST(OverlayOptionsTest, BadIdMappings) {
  ExpectError({"lowerdir=/a,uidmapping=0:1000"}, "option 'uidmapping=0:1000': expected ON_DISK:IN_MOUNT:COUNT");
  ExpectError({"lowerdir=/a,uidmapping="}, "option 'uidmapping='");
  ExpectError({"lowerdir=/a,gidmapping=0:x:1"}, "option 'gidmapping=0:x:1'");
  ExpectError({"lowerdir=/a,uidmapping=0:1::1:2:3"}, "decimal");
  ExpectError({"lowerdir=/a,uidmapping=-1:0:1"}, "decimal");
  ExpectError({"lowerdir=/a,uidmapping=0:0:0"}, "a range of 0 ids");
  ExpectError({"lowerdir=/a,uidmapping=0:4294967295:2"}, "beyond the largest id");
  ExpectError({"lowerdir=/a,uidmapping=0:4294967296:1"}, "decimal");
  ExpectError({"lowerdir=/a,uidmapping=0:100:10:5:200:1"}, "overlapping");   // on disk
  ExpectError({"lowerdir=/a,uidmapping=0:100:10:50:105:1"}, "overlapping");  // in the mount
  // The man page's comma between triples splits the option: the tail is no option at all.
  ExpectError({"lowerdir=/a,uidmapping=0:1000:1,1:100000:65536"}, "joined by ':'");
}

TEST(OverlayOptionsTest, Squash) {
  MountOptions root = ParseOk("squash_to_root");
  EXPECT_EQ(root.overlay.squash_uid, 0u);
  EXPECT_EQ(root.overlay.squash_gid, 0u);
  MountOptions uid = ParseOk("squash_to_uid=1000");
  EXPECT_EQ(uid.overlay.squash_uid, 1000u);
  EXPECT_FALSE(uid.overlay.squash_gid);
  // squash_to_uid/gid win over squash_to_root in either order.
  MountOptions both = ParseOk("squash_to_gid=5,squash_to_root");
  EXPECT_EQ(both.overlay.squash_uid, 0u);
  EXPECT_EQ(both.overlay.squash_gid, 5u);
  MountOptions both2 = ParseOk("squash_to_root,squash_to_uid=9");
  EXPECT_EQ(both2.overlay.squash_uid, 9u);
  EXPECT_EQ(both2.overlay.squash_gid, 0u);
  ExpectError({"lowerdir=/a,squash_to_uid=-1"}, "option 'squash_to_uid=-1': not an id");
  ExpectError({"lowerdir=/a,squash_to_gid=4294967295"}, "not an id");
  ExpectError({"lowerdir=/a,squash_to_gid="}, "not an id");
  ExpectError({"lowerdir=/a,squash_to_root=1"}, "unknown option 'squash_to_root=1'");
}

TEST(OverlayOptionsTest, SyncVolatileFsync) {
  EXPECT_TRUE(ParseOk("fsync=1").overlay.sync);
  EXPECT_FALSE(ParseOk("fsync=0").overlay.sync);
  EXPECT_FALSE(ParseOk("volatile").overlay.sync);
  EXPECT_FALSE(ParseOk("volatile,fsync=1").overlay.sync);  // volatile wins, as in fuse-overlayfs
  ExpectError({"lowerdir=/a,fsync=yes"}, "option 'fsync=yes': 0 or 1");
}

TEST(OverlayOptionsTest, Passthrough) {
  EXPECT_TRUE(ParseOk("ro").passthrough);  // on unless asked otherwise
  EXPECT_FALSE(ParseOk("passthrough=0").passthrough);
  EXPECT_TRUE(ParseOk("passthrough=0,passthrough=1").passthrough);  // the last one wins
  ExpectError({"lowerdir=/a,passthrough=off"}, "option 'passthrough=off': 0 or 1");
}

TEST(OverlayOptionsTest, IoUring) {
  EXPECT_TRUE(ParseOk("ro").io_uring);
  EXPECT_FALSE(ParseOk("io_uring=0").io_uring);
  EXPECT_TRUE(ParseOk("io_uring=0,io_uring=1").io_uring);
  ExpectError({"lowerdir=/a,io_uring=yes"}, "option 'io_uring=yes': 0 or 1");
}

TEST(OverlayOptionsTest, StaticNlinkFsnameDebug) {
  MountOptions o = ParseOk("static_nlink,fsname=myfs,debug");
  EXPECT_TRUE(o.overlay.static_nlink);
  EXPECT_EQ(o.overlay.fsname, "myfs");
  EXPECT_TRUE(o.debug);
  EXPECT_FALSE(ParseOk("noacl").overlay.static_nlink);
  ExpectError({"lowerdir=/a,fsname="}, "option 'fsname='");
}

TEST(OverlayOptionsTest, FuseOptionsArePassedOnInOrder) {
  MountOptions o = ParseOk(
      "allow_other,allow_root,default_permissions,auto_unmount,dev,nodev,suid,nosuid,exec,noexec,atime,noatime,"
      "async,sync,dirsync");
  EXPECT_EQ(o.overlay.fuse_options,
            (std::vector<std::string>{"allow_other", "allow_root", "default_permissions", "auto_unmount", "dev",
                                      "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "async",
                                      "sync", "dirsync"}));
}

TEST(OverlayOptionsTest, AcceptedAndIgnored) {
  for (const char* option :
       {"noacl", "diratime", "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime",
        "nolazytime", "nofail", "_netdev", "defaults", "threaded=0", "threaded=1", "fast_ino=1", "writeback=0",
        "writeback=1", "noxattrs=0", "xattr_permissions=0", "timeout=0", "timeout=1000000000", "timeout=0.5",
        "metacopy=on", "metacopy=off", "context=system_u:object_r:container_file_t:s0", "fscontext=x",
        "defcontext=x", "rootcontext=x"}) {
    MountOptions o = ParseOk(option);
    EXPECT_TRUE(o.overlay.fuse_options.empty()) << option;
    EXPECT_TRUE(o.overlay.sync) << option;
  }
}

TEST(OverlayOptionsTest, RejectedValues) {
  ExpectError({"lowerdir=/a,threaded=2"}, "option 'threaded=2': 0 or 1");
  ExpectError({"lowerdir=/a,fast_ino="}, "0 or 1");
  ExpectError({"lowerdir=/a,noxattrs=1"}, "option 'noxattrs=1': not supported");
  ExpectError({"lowerdir=/a,xattr_permissions=2"}, "option 'xattr_permissions=2': not supported");
  ExpectError({"lowerdir=/a,timeout=-1"}, "option 'timeout=-1'");
  ExpectError({"lowerdir=/a,timeout=soon"}, "not a number");
  ExpectError({"lowerdir=/a,metacopy=yes"}, "on or off");
}

TEST(OverlayOptionsTest, UnknownOptions) {
  ExpectError({"lowerdir=/a,bogus"}, "unknown option 'bogus'");
  ExpectError({"lowerdir=/a", "plugins=/x.so"}, "unknown option 'plugins=/x.so'");
  ExpectError({"lowerdir=/a,nosymfollow"}, "unknown option 'nosymfollow'");
  ExpectError({"lowerdir=/a,allow_other=1"}, "unknown option 'allow_other=1'");
  ExpectError({"lowerdir=/a,lowerdir"}, "unknown option 'lowerdir'");
}

TEST(OverlayOptionsTest, RequiredAndPairedDirectories) {
  ExpectError({"allow_other"}, "-o needs lowerdir=");
  ExpectError({"upperdir=/u,workdir=/w"}, "-o needs lowerdir=");
  ExpectError({"lowerdir=/a,upperdir=/u"}, "upperdir= needs workdir=");
  ExpectError({"lowerdir=/a,workdir=/w"}, "workdir= needs upperdir=");
  ExpectError({"lowerdir=/a,upperdir=,workdir=/w"}, "option 'upperdir='");
  ExpectError({"lowerdir="}, "option 'lowerdir=': an empty directory");
  ExpectError({"lowerdir=/a::/b"}, "an empty directory");
  ExpectError({"lowerdir=/a:"}, "an empty directory");
}

TEST(OverlayCommandLineTest, FuseOverlayfsForm) {
  MountOptions o;
  auto s = ParseOverlayCommandLine({"lowerdir=/a,upperdir=/u,workdir=/w"}, {"/mnt"}, &o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(o.mountpoint, "/mnt");
  EXPECT_TRUE(o.overlay.fsname.empty());
}

TEST(OverlayCommandLineTest, MountFuse3Form) {
  // Exactly what `mount -t fuse.stratafs -o lowerdir=/a:/b,upperdir=/u,workdir=/w stratafs /mnt`
  // runs as root: mount(8) puts rw first, mount.fuse3 appends dev,suid.
  MountOptions o;
  auto s = ParseOverlayCommandLine({"rw,lowerdir=/a:/b,upperdir=/u,workdir=/w,dev,suid"}, {"stratafs", "/mnt"}, &o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(o.mountpoint, "/mnt");
  EXPECT_EQ(o.overlay.fsname, "stratafs");
  EXPECT_EQ(o.lower_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_FALSE(o.read_only);
  EXPECT_EQ(o.overlay.fuse_options, (std::vector<std::string>{"dev", "suid"}));

  // mount -r ... -o nosuid,nodev,noatime,relatime: read-only, flags passed on, relatime dropped.
  MountOptions r;
  s = ParseOverlayCommandLine({"ro,nosuid,nodev,noatime,relatime,lowerdir=/a,upperdir=/u,workdir=/w"}, {"src", "/m"},
                              &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(r.read_only);
  EXPECT_EQ(r.overlay.fuse_options, (std::vector<std::string>{"nosuid", "nodev", "noatime"}));
}

TEST(OverlayCommandLineTest, FsnameOptionWinsOverSource) {
  MountOptions o;
  ASSERT_TRUE(ParseOverlayCommandLine({"lowerdir=/a,fsname=mine"}, {"src", "/mnt"}, &o).ok());
  EXPECT_EQ(o.overlay.fsname, "mine");
}

TEST(OverlayCommandLineTest, PositionalErrors) {
  MountOptions o;
  EXPECT_TRUE(Mentions(ParseOverlayCommandLine({"lowerdir=/a"}, {}, &o).message(), "expected MOUNTPOINT"));
  EXPECT_TRUE(Mentions(ParseOverlayCommandLine({"lowerdir=/a"}, {"a", "b", "c"}, &o).message(), "expected MOUNTPOINT"));
  EXPECT_TRUE(Mentions(ParseOverlayCommandLine({"lowerdir=/a,bad"}, {"/mnt"}, &o).message(), "unknown option 'bad'"));
}

}  // namespace
}  // namespace layerfs
