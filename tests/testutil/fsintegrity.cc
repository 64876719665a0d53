// fsintegrity: a data-integrity run for a mounted filesystem. Several processes, each with
// several threads, interleave pwrite, pread, ftruncate, shared writable mmap, msync, fsync and
// reopen on files under DIR, keep an in-memory model of every byte, and check each read against
// it. Each thread owns one private file (which it also truncates) and one region of a file
// shared by all threads of its process. Exits 1 at the first difference, naming file, offset
// and operation; 0 when every byte matched.
//
//   strata_fsintegrity DIR [--procs P] [--threads T] [--ops N] [--seed S] [--seed-file PATH]
//                      [--keep-seed-size 1]
// --seed-file: start private file 0 of each process as a copy of PATH's content, written
// through the mount over an existing file (a copy-up of a lower file when PATH is in the image).
// --keep-seed-size 1: that file is never truncated below its first size (a large image file then
// stays a metadata-only copy whose written blocks override its object, all through the run).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kRegion = 256 * 1024;  // each thread's share of the shared file
constexpr size_t kMaxWrite = 96 * 1024;
const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fsintegrity: %s (errno %d: %s)\n", what.c_str(), errno, std::strerror(errno));
  std::_Exit(1);
}

[[noreturn]] void Mismatch(const std::string& path, size_t off, const char* op) {
  std::fprintf(stderr, "fsintegrity: %s: wrong byte at offset %zu after %s\n", path.c_str(), off, op);
  std::_Exit(1);
}

void Compare(const std::string& path, const std::vector<unsigned char>& want, size_t base, const unsigned char* got,
             size_t n, const char* op) {
  for (size_t i = 0; i < n; ++i) {
    if (want[base + i] != got[i]) Mismatch(path, base + i, op);
  }
}

void FullRead(int fd, unsigned char* buf, size_t n, off_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, off + static_cast<off_t>(done));
    if (r < 0) Die("pread " + path);
    if (r == 0) Die("short read of " + path + " at " + std::to_string(off + done));
    done += static_cast<size_t>(r);
  }
}

void FullWrite(int fd, const unsigned char* buf, size_t n, off_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, buf + done, n - done, off + static_cast<off_t>(done));
    if (w <= 0) Die("pwrite " + path);
    done += static_cast<size_t>(w);
  }
}

void VerifyAll(int fd, const std::vector<unsigned char>& model, size_t base, size_t len, const std::string& path,
               const char* op) {
  std::vector<unsigned char> buf(len);
  if (len) FullRead(fd, buf.data(), len, static_cast<off_t>(base), path);
  Compare(path, model, base, buf.data(), len, op);
}

struct Worker {
  std::string private_path;
  std::string shared_path;
  size_t region_base;
  uint64_t seed;
  int ops;
  std::vector<unsigned char> initial;  // content the private file starts with
  size_t min_size = 0;                 // truncations go no lower
};

void Run(const Worker& w) {
  std::mt19937_64 rng(w.seed);
  auto rand_upto = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  std::vector<unsigned char> model = w.initial;
  int fd = ::open(w.private_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) Die("open " + w.private_path);
  int shared = ::open(w.shared_path.c_str(), O_RDWR | O_CLOEXEC);
  if (shared < 0) Die("open " + w.shared_path);
  std::vector<unsigned char> region(kRegion, 0);
  std::vector<unsigned char> buf;
  for (int op = 0; op < w.ops; ++op) {
    switch (rand_upto(10)) {
      case 0:
      case 1: {  // write, possibly past the end (a hole in between)
        size_t off = rand_upto(model.size() + 65536);
        size_t len = 1 + rand_upto(kMaxWrite);
        buf.resize(len);
        for (auto& b : buf) b = static_cast<unsigned char>(rng());
        FullWrite(fd, buf.data(), len, static_cast<off_t>(off), w.private_path);
        if (model.size() < off + len) model.resize(off + len, 0);
        std::memcpy(model.data() + off, buf.data(), len);
        break;
      }
      case 2: {  // read a range and check it
        if (model.empty()) break;
        size_t off = rand_upto(model.size());
        size_t len = 1 + rand_upto(std::min(model.size() - off, kMaxWrite));
        buf.resize(len);
        FullRead(fd, buf.data(), len, static_cast<off_t>(off), w.private_path);
        Compare(w.private_path, model, off, buf.data(), len, "pread");
        break;
      }
      case 3: {  // truncate, shorter or longer
        size_t size = rand_upto(model.size() * 2 + 4096);
        if (size < w.min_size) size = w.min_size + rand_upto(65536);
        if (::ftruncate(fd, static_cast<off_t>(size)) != 0) Die("ftruncate " + w.private_path);
        model.resize(size, 0);
        break;
      }
      case 4: {  // change bytes through a shared writable mapping
        if (model.size() < kPage) break;
        size_t pages = model.size() / kPage;
        size_t first = rand_upto(pages);
        size_t count = 1 + rand_upto(std::min<size_t>(pages - first, 16));
        size_t len = count * kPage;
        void* map = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(first * kPage));
        if (map == MAP_FAILED) Die("mmap " + w.private_path);
        auto* bytes = static_cast<unsigned char*>(map);
        Compare(w.private_path, model, first * kPage, bytes, len, "mmap read");
        size_t at = rand_upto(len);
        size_t n = 1 + rand_upto(len - at);
        for (size_t i = 0; i < n; ++i) bytes[at + i] = model[first * kPage + at + i] = static_cast<unsigned char>(rng());
        if (rng() % 2 && ::msync(map, len, MS_SYNC) != 0) Die("msync " + w.private_path);
        ::munmap(map, len);
        break;
      }
      case 5:  // durability points
        if ((rng() % 2 ? ::fsync(fd) : ::fdatasync(fd)) != 0) Die("fsync " + w.private_path);
        break;
      case 6: {  // close and open again; also a second, read-only descriptor
        ::close(fd);
        fd = ::open(w.private_path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) Die("reopen " + w.private_path);
        int ro = ::open(w.private_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ro < 0) Die("open read-only " + w.private_path);
        struct stat st;
        if (::fstat(ro, &st) != 0) Die("fstat " + w.private_path);
        if (static_cast<size_t>(st.st_size) != model.size()) {
          std::fprintf(stderr, "fsintegrity: %s: size %lld, expected %zu\n", w.private_path.c_str(),
                       static_cast<long long>(st.st_size), model.size());
          std::_Exit(1);
        }
        VerifyAll(ro, model, 0, model.size(), w.private_path, "reopen");
        ::close(ro);
        break;
      }
      case 7:
      case 8: {  // this thread's region of the shared file, beside other threads and processes
        size_t off = rand_upto(kRegion);
        size_t len = 1 + rand_upto(std::min(kRegion - off, size_t{16384}));
        buf.resize(len);
        for (auto& b : buf) b = static_cast<unsigned char>(rng());
        FullWrite(shared, buf.data(), len, static_cast<off_t>(w.region_base + off), w.shared_path);
        std::memcpy(region.data() + off, buf.data(), len);
        break;
      }
      default: {
        std::vector<unsigned char> got(kRegion);
        FullRead(shared, got.data(), kRegion, static_cast<off_t>(w.region_base), w.shared_path);
        for (size_t i = 0; i < kRegion; ++i) {
          if (got[i] != region[i]) Mismatch(w.shared_path, w.region_base + i, "shared region read");
        }
      }
    }
  }
  VerifyAll(fd, model, 0, model.size(), w.private_path, "the final check");
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != model.size()) Die("final size of " + w.private_path);
  ::close(fd);
  std::vector<unsigned char> got(kRegion);
  FullRead(shared, got.data(), kRegion, static_cast<off_t>(w.region_base), w.shared_path);
  for (size_t i = 0; i < kRegion; ++i) {
    if (got[i] != region[i]) Mismatch(w.shared_path, w.region_base + i, "the final shared check");
  }
  ::close(shared);
}

std::vector<unsigned char> ReadWhole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path);
  struct stat st;
  if (::fstat(fd, &st) != 0) Die("fstat " + path);
  std::vector<unsigned char> data(static_cast<size_t>(st.st_size));
  if (!data.empty()) FullRead(fd, data.data(), data.size(), 0, path);
  ::close(fd);
  return data;
}

int RunProcess(const std::string& dir, int proc, int threads, int ops, uint64_t seed, const std::string& seed_file,
               bool keep_seed_size) {
  const std::string shared = dir + "/shared." + std::to_string(proc);
  int fd = ::open(shared.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) Die("create " + shared);
  if (::ftruncate(fd, static_cast<off_t>(kRegion * static_cast<size_t>(threads))) != 0) Die("size " + shared);
  ::close(fd);
  std::vector<Worker> workers;
  for (int t = 0; t < threads; ++t) {
    Worker w;
    w.private_path = dir + "/private." + std::to_string(proc) + "." + std::to_string(t);
    w.shared_path = shared;
    w.region_base = kRegion * static_cast<size_t>(t);
    w.seed = seed * 1000003 + static_cast<uint64_t>(proc * 1000 + t);
    w.ops = ops;
    if (t == 0 && !seed_file.empty()) {
      // Modify an existing file in place: the first write copies it up.
      w.private_path = seed_file;
      w.initial = ReadWhole(seed_file);
      if (keep_seed_size) w.min_size = w.initial.size();
    } else {
      int p = ::open(w.private_path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
      if (p < 0) Die("create " + w.private_path);
      ::close(p);
    }
    workers.push_back(std::move(w));
  }
  std::vector<std::thread> running;
  for (const auto& w : workers) running.emplace_back(Run, std::cref(w));
  for (auto& t : running) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s DIR [--procs P] [--threads T] [--ops N] [--seed S] [--seed-file PATH]"
                 " [--keep-seed-size 1]\n",
                 argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  int procs = 2, threads = 3, ops = 2000;
  uint64_t seed = 1;
  std::string seed_file;
  bool keep_seed_size = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--procs") procs = std::atoi(value.c_str());
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else if (flag == "--ops") ops = std::atoi(value.c_str());
    else if (flag == "--seed") seed = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--seed-file") seed_file = value;
    else if (flag == "--keep-seed-size") keep_seed_size = value == "1";
    else {
      std::fprintf(stderr, "fsintegrity: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  std::vector<pid_t> children;
  for (int p = 0; p < procs; ++p) {
    pid_t pid = ::fork();
    if (pid < 0) Die("fork");
    if (pid == 0) std::_Exit(RunProcess(dir, p, threads, ops, seed, p == 0 ? seed_file : "", keep_seed_size));
    children.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  if (!failed) std::printf("fsintegrity: %d processes x %d threads x %d operations: every byte matched\n", procs, threads, ops);
  return failed;
}
