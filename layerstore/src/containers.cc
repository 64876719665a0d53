// Container records and their directories: create, resolve, list, remove.
//
// A container is a row in `containers` (schema.h) plus containers/<id>/ with upper/ and work/
// (the FUSE driver's writable layer, overlayfs format) and the lock file its daemon holds. The
// directory is built under tmp/, synced and renamed into place before the row commits, and the
// row goes before the directory on removal: whatever a crash interrupts, what is left is a
// directory without a row, which Fsck removes. Names are unique; they are checked by scanning
// inside the write transaction (containers are few), so two creators cannot both take one.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "fsutil.h"
#include "paths.h"
#include "store_impl.h"

namespace layerstore {
namespace {

// Every container row in ID order, decoded, until fn returns false; a row that does not decode
// ends the scan with an error naming it.
Status ScanContainers(lmdb::Txn& txn, const Tables& t, const std::function<bool(ContainerRecord&)>& fn) {
  Status damaged;
  LS_RETURN_IF_ERROR(txn.Scan(t.containers, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeContainer(key, value);
    if (!rec.ok()) {
      damaged = rec.status().WithContext("container " + std::string(key));
      return false;
    }
    return fn(*rec);
  }));
  return damaged;
}

// Docker's namesgenerator lists (github.com/moby/moby pkg/namesgenerator), abridged.
constexpr std::array kAdjectives = {
    "admiring",  "adoring",       "affectionate", "agitated",      "amazing",     "angry",       "awesome",
    "beautiful", "blissful",      "bold",         "boring",        "brave",       "busy",        "charming",
    "clever",    "compassionate", "competent",    "condescending", "confident",   "cool",        "cranky",
    "crazy",     "dazzling",      "determined",   "distracted",    "dreamy",      "eager",       "ecstatic",
    "elastic",   "elated",        "elegant",      "eloquent",      "epic",        "exciting",    "fervent",
    "festive",   "flamboyant",    "focused",      "friendly",      "frosty",      "funny",       "gallant",
    "gifted",    "goofy",         "gracious",     "great",         "happy",       "hardcore",    "heuristic",
    "hopeful",   "hungry",        "infallible",   "inspiring",     "intelligent", "interesting", "jolly",
    "jovial",    "keen",          "kind",         "laughing",      "loving",      "lucid",       "magical",
    "modest",    "musing",        "mystifying",   "naughty",       "nervous",     "nice",        "nifty",
    "nostalgic", "objective",     "optimistic",   "peaceful",      "pedantic",    "pensive",     "practical",
    "priceless", "quirky",        "quizzical",    "recursing",     "relaxed",     "reverent",    "romantic",
    "sad",       "serene",        "sharp",        "silly",         "sleepy",      "stoic",       "strange",
    "stupefied", "suspicious",    "sweet",        "tender",        "thirsty",     "trusting",    "unruffled",
    "upbeat",    "vibrant",       "vigilant",     "vigorous",      "wizardly",    "wonderful",   "xenodochial",
    "youthful",  "zealous",       "zen"};

constexpr std::array kSurnames = {"agnesi",     "albattani",    "allen",      "almeida",       "antonelli",
                                  "archimedes", "ardinghelli",  "aryabhata",  "austin",        "babbage",
                                  "banach",     "bardeen",      "bartik",     "bassi",         "beaver",
                                  "bell",       "benz",         "bhabha",     "bhaskara",      "black",
                                  "blackburn",  "blackwell",    "bohr",       "booth",         "borg",
                                  "bose",       "bouman",       "boyd",       "brahmagupta",   "brattain",
                                  "brown",      "buck",         "burnell",    "cannon",        "carson",
                                  "cartwright", "carver",       "cerf",       "chandrasekhar", "chaplygin",
                                  "chatelet",   "chatterjee",   "chebyshev",  "clarke",        "cohen",
                                  "colden",     "cori",         "cray",       "curie",         "darwin",
                                  "davinci",    "dewdney",      "dhawan",     "diffie",        "dijkstra",
                                  "dirac",      "driscoll",     "dubinsky",   "easley",        "edison",
                                  "einstein",   "elbakyan",     "elgamal",    "elion",         "ellis",
                                  "engelbart",  "euclid",       "euler",      "faraday",       "feistel",
                                  "fermat",     "fermi",        "feynman",    "franklin",      "gagarin",
                                  "galileo",    "galois",       "ganguly",    "gauss",         "germain",
                                  "goldberg",   "goldstine",    "goldwasser", "goodall",       "gould",
                                  "greider",    "grothendieck", "haibt",      "hamilton",      "hawking",
                                  "heisenberg", "hellman",      "hermann",    "herschel",      "hertz",
                                  "heyrovsky",  "hodgkin",      "hofstadter", "hoover",        "hopper",
                                  "hypatia",    "ishizaka",     "jackson",    "jang",          "jemison",
                                  "jennings",   "jepsen",       "johnson",    "joliot",        "jones",
                                  "kalam",      "kapitsa",      "kare",       "keldysh",       "keller",
                                  "kepler",     "khayyam",      "khorana",    "kilby",         "kirch",
                                  "knuth",      "kowalevski",   "lalande",    "lamarr",        "lamport",
                                  "leakey",     "leavitt",      "lederberg",  "lehmann",       "lewin",
                                  "lichterman", "liskov",       "lovelace",   "lumiere",       "mahavira",
                                  "margulis",   "matsumoto",    "maxwell",    "mayer",         "mccarthy",
                                  "mcclintock", "mclaren",      "mclean",     "mcnulty",       "meitner",
                                  "mendel",     "mendeleev",    "merkle",     "mestorf",       "mirzakhani",
                                  "montalcini", "moore",        "morse",      "moser",         "napier",
                                  "nash",       "neumann",      "newton",     "nightingale",   "nobel",
                                  "noether",    "northcutt",    "noyce",      "panini",        "pare",
                                  "pascal",     "pasteur",      "payne",      "perlman",       "pike",
                                  "poincare",   "poitras",      "ptolemy",    "raman",         "ramanujan",
                                  "rhodes",     "ride",         "ritchie",    "robinson",      "roentgen",
                                  "rosalind",   "rubin",        "saha",       "sammet",        "sanderson",
                                  "satoshi",    "shamir",       "shannon",    "shaw",          "shirley",
                                  "shockley",   "shtern",       "sinoussi",   "snyder",        "solomon",
                                  "spence",     "stonebraker",  "sutherland", "swanson",       "swartz",
                                  "swirles",    "taussig",      "tesla",      "tharp",         "thompson",
                                  "torvalds",   "tu",           "turing",     "varahamihira",  "vaughan",
                                  "villani",    "visvesvaraya", "volhard",    "wescoff",       "wilbur",
                                  "wiles",      "williams",     "williamson", "wilson",        "wing",
                                  "wozniak",    "wright",       "wu",         "yalow",         "yonath",
                                  "zhukovsky"};

constexpr const char* kValidNameChars = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

// Random bytes from the kernel (getrandom never returns short for <= 256 bytes once seeded).
Status RandomBytes(void* buf, size_t size) {
  char* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("getrandom", errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Result<uint32_t> RandomBelow(uint32_t n) {
  uint32_t v = 0;
  LS_RETURN_IF_ERROR(RandomBytes(&v, sizeof v));
  return v % n;  // the bias for n of a few hundred is negligible for names
}

// 64 lowercase hex. Like Docker's stringid.GenerateRandomID, never all digits in its first 12, so
// a short ID cannot be read as a number.
Result<std::string> NewContainerId() {
  for (;;) {
    std::array<uint8_t, 32> raw;
    LS_RETURN_IF_ERROR(RandomBytes(raw.data(), raw.size()));
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id;
    for (uint8_t b : raw) {
      id.push_back(kHex[b >> 4]);
      id.push_back(kHex[b & 15]);
    }
    if (id.substr(0, 12).find_first_not_of("0123456789") != std::string::npos) return id;
  }
}

// Docker's GetRandomName(retry): "adjective_surname", a digit appended on retries.
Result<std::string> RandomName(int retry) {
  for (;;) {
    LS_ASSIGN_OR_RETURN(uint32_t a, RandomBelow(kAdjectives.size()));
    LS_ASSIGN_OR_RETURN(uint32_t s, RandomBelow(kSurnames.size()));
    std::string name = std::string(kAdjectives[a]) + "_" + kSurnames[s];
    if (name == "boring_wozniak") continue;  // Steve Wozniak is not boring (Docker's rule)
    if (retry > 0) {
      LS_ASSIGN_OR_RETURN(uint32_t digit, RandomBelow(10));
      name += std::to_string(digit);
    }
    return name;
  }
}

// Docker's validContainerNamePattern: ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$ (two characters at least).
bool ValidName(std::string_view name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.size() < 2 || !alnum(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool IsLowerHex(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Status NameConflict(std::string_view name, std::string_view holder) {
  return Status::AlreadyExists("Conflict. The container name \"/" + std::string(name) +
                               "\" is already in use by container \"" + std::string(holder) +
                               "\". You have to remove (or rename) that container to be able to reuse that name.");
}

// Makes `dir` (relative to root_fd) with upper/, work/ and the lock file, all synced if `sync`.
Status BuildContainerDir(int root_fd, const std::string& dir, bool sync) {
  if (::mkdirat(root_fd, dir.c_str(), 0700) != 0) return Status::FromErrno("creating " + dir, errno);
  const std::string upper = dir + "/" + paths::kUpperDir;
  const std::string work = dir + "/" + paths::kWorkDir;
  const std::string lock = dir + "/" + paths::kLockName;
  if (::mkdirat(root_fd, upper.c_str(), 0755) != 0) return Status::FromErrno("creating " + upper, errno);
  // The merged root's permissions come from upper/: 0755 whatever the umask.
  if (::fchmodat(root_fd, upper.c_str(), 0755, 0) != 0) return Status::FromErrno("chmod " + upper, errno);
  if (::mkdirat(root_fd, work.c_str(), 0700) != 0) return Status::FromErrno("creating " + work, errno);
  UniqueFd fd(::openat(root_fd, lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Status::FromErrno("creating " + lock, errno);
  if (!sync) return {};
  if (::fsync(fd.get()) != 0) return Status::FromErrno("fsync " + lock, errno);
  for (const std::string& path : {upper, work, dir}) LS_RETURN_IF_ERROR(fsutil::FsyncPath(root_fd, path));
  return {};
}

}  // namespace

Result<ContainerRecord> StoreImpl::CreateContainer(std::string_view name_arg, std::string_view image,
                                                   std::string_view config_json, ContainerDurability durability) {
  std::string_view name = name_arg;
  if (!name.empty() && name[0] == '/') name.remove_prefix(1);  // Docker's stored form "/x" is accepted
  if (!name_arg.empty() && !ValidName(name)) {
    return Status::InvalidArgument("Invalid container name (" + std::string(name_arg) + "), only " + kValidNameChars +
                                   " are allowed");
  }
  std::string config = config_json.empty() ? "{}" : std::string(config_json);
  auto parsed = nlohmann::json::parse(config, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::InvalidArgument("container config is not a JSON object");
  }
  LS_ASSIGN_OR_RETURN(ImageView view, ResolveImage(image));
  // Shared gc.lock from the first directory to the commit: Fsck would take a directory whose
  // row is not yet committed for a crash leftover.
  LS_ASSIGN_OR_RETURN(std::unique_ptr<WriteLease> lease, AcquireWriteLease());
  LS_ASSIGN_OR_RETURN(std::vector<ContainerRecord> existing, ListContainers());
  auto holder_of = [&](std::string_view n) -> const ContainerRecord* {
    for (const ContainerRecord& c : existing) {
      if (c.name == n) return &c;
    }
    return nullptr;
  };

  ContainerRecord rec;
  LS_ASSIGN_OR_RETURN(rec.id, NewContainerId());
  rec.image_id = view.record.id;
  rec.image = std::string(image);
  rec.created_at = Now();
  rec.config = std::move(config);
  if (!name.empty()) {
    if (const ContainerRecord* c = holder_of(name)) return NameConflict(name, c->id);
    rec.name = std::string(name);
  } else {
    // Docker's generateNewName: six random names, then the short ID.
    for (int retry = 0; retry < 6 && rec.name.empty(); ++retry) {
      LS_ASSIGN_OR_RETURN(std::string candidate, RandomName(retry));
      if (!holder_of(candidate)) rec.name = std::move(candidate);
    }
    if (rec.name.empty()) rec.name = rec.id.substr(0, 12);
  }

  const int root = root_fd_.get();
  const std::string building = std::string(paths::kTmpDir) + "/container-" + rec.id;
  const std::string dir = paths::ContainerDir(rec.id);
  // A container removed after its run needs none of the six syncs (see ContainerDurability).
  const bool sync = durability == ContainerDurability::kSynced;
  Status built = BuildContainerDir(root, building, sync);
  if (built.ok() && ::renameat(root, building.c_str(), root, dir.c_str()) != 0) {
    built = Status::FromErrno("renaming " + building + " to " + dir, errno);
  }
  if (built.ok() && sync) built = fsutil::FsyncPath(root, paths::kContainersDir);
  if (built.ok() && sync) built = fsutil::FsyncPath(root, paths::kTmpDir);
  if (!built.ok()) {
    (void)fsutil::RemoveTreeAt(root, building);
    (void)fsutil::RemoveTreeAt(root, dir);
    return built.WithContext("creating container " + rec.name);
  }

  auto commit = [&]() -> Status {
    Tables t;
    LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
    // Checked again in the write transaction, which writers take one at a time.
    LS_ASSIGN_OR_RETURN(auto image_row, txn.Get(t.images, rec.image_id.raw()));
    if (!image_row) return Status::NotFound("No such image: " + std::string(image));
    Status inner;
    LS_RETURN_IF_ERROR(txn.Scan(t.containers, "", [&](std::string_view key, std::string_view value) {
      auto other = DecodeContainer(key, value);
      if (other.ok() && other->name == rec.name) {
        inner = NameConflict(rec.name, other->id);
        return false;
      }
      return true;
    }));
    LS_RETURN_IF_ERROR(inner);
    LS_RETURN_IF_ERROR(txn.Put(t.containers, rec.id, EncodeContainer(rec)));
    return txn.Commit();
  };
  Status committed = commit();
  if (!committed.ok()) {
    (void)fsutil::RemoveTreeAt(root, dir);
    return committed;
  }
  return rec;
}

Result<ContainerRecord> StoreImpl::ResolveContainer(std::string_view name_or_id) {
  const std::string not_found = "No such container: " + std::string(name_or_id);
  if (name_or_id.empty()) return Status::NotFound(not_found);
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  // Docker's order: a full ID, then an exact name, then a unique ID prefix.
  if (name_or_id.size() == 64 && IsLowerHex(name_or_id)) {
    LS_ASSIGN_OR_RETURN(auto row, txn.Get(t.containers, name_or_id));
    if (row) return DecodeContainer(name_or_id, *row);
  }
  std::string_view name = name_or_id[0] == '/' ? name_or_id.substr(1) : name_or_id;
  std::optional<ContainerRecord> by_name;
  std::vector<ContainerRecord> by_prefix;
  Status scanned = ScanContainers(txn, t, [&](ContainerRecord& rec) {
    if (rec.name == name) {
      by_name = rec;
      return false;
    }
    if (std::string_view(rec.id).substr(0, name_or_id.size()) == name_or_id) by_prefix.push_back(rec);
    return true;
  });
  if (by_name) return *by_name;
  LS_RETURN_IF_ERROR(scanned);
  if (IsLowerHex(name_or_id)) {
    if (by_prefix.size() == 1) return by_prefix[0];
    if (by_prefix.size() > 1) {
      return Status::InvalidArgument("multiple IDs found with provided prefix: " + std::string(name_or_id));
    }
  }
  return Status::NotFound(not_found);
}

Result<std::vector<ContainerRecord>> StoreImpl::ListContainers() {
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(false, &t));
  std::vector<ContainerRecord> out;
  LS_RETURN_IF_ERROR(ScanContainers(txn, t, [&](ContainerRecord& rec) {
    out.push_back(std::move(rec));
    return true;
  }));
  return out;
}

Status StoreImpl::RemoveContainer(std::string_view id) {
  if (id.size() != 64 || !IsLowerHex(id)) return Status::NotFound("No such container: " + std::string(id));
  const int root = root_fd_.get();
  // The daemon serving the container holds its lock; so do we, until the row and the directory
  // are gone (a daemon that gets the lock afterwards finds no row).
  const std::string lock_path = paths::ContainerLock(id);
  UniqueFd lock(::openat(root, lock_path.c_str(), O_RDWR | O_CLOEXEC));
  if (lock) {
    while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return Status::Unavailable("container " + std::string(id.substr(0, 12)) +
                                   " is in use: a stratafs daemon serves it (unmount it first)");
      }
      return Status::FromErrno("locking " + lock_path, errno);
    }
  }
  Tables t;
  LS_ASSIGN_OR_RETURN(lmdb::Txn txn, Begin(true, &t));
  LS_ASSIGN_OR_RETURN(bool existed, txn.Del(t.containers, id));
  if (!existed) return Status::NotFound("No such container: " + std::string(id));
  LS_RETURN_IF_ERROR(txn.Commit());
  Status removed = fsutil::RemoveTreeAt(root, paths::ContainerDir(id));
  if (!removed.ok()) {
    return removed.WithContext("container " + std::string(id.substr(0, 12)) +
                               " was removed, but not all of its directory (strata fsck removes the rest)");
  }
  return {};
}

std::string StoreImpl::ContainerDir(std::string_view id) const {
  std::error_code ec;
  std::filesystem::path root = std::filesystem::absolute(options_.root, ec);
  if (ec) root = options_.root;
  return (root / paths::ContainerDir(id)).lexically_normal().string();
}

Result<std::string> StoreImpl::MakeTempDir() {
  std::error_code ec;
  std::filesystem::path root = std::filesystem::absolute(options_.root, ec);
  if (ec) root = options_.root;
  std::string tmpl = (root / paths::kTmpDir / "scratch-XXXXXX").lexically_normal().string();
  if (::mkdtemp(tmpl.data()) == nullptr) return Status::FromErrno("creating a directory under tmp/", errno);
  return tmpl;
}

Result<std::vector<ContainerRecord>> StoreImpl::ContainersUsing(lmdb::Txn& txn, const Tables& t,
                                                                const Digest& image_id) {
  std::vector<ContainerRecord> out;
  LS_RETURN_IF_ERROR(txn.Scan(t.containers, "", [&](std::string_view key, std::string_view value) {
    auto rec = DecodeContainer(key, value);
    if (rec.ok() && rec->image_id == image_id) out.push_back(std::move(*rec));
    return true;
  }));
  return out;
}

}  // namespace layerstore
