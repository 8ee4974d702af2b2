// Safe extractor: libarchive reads, we vet every entry (name, type, link target, size)
// before libarchive's disk writer creates it under the resolved destination.
#include "support/extract.hpp"

#include "support/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

namespace rra::plugin_support {

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kBlock = 4096;

std::vector<std::string> splitPath(const std::string& p) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= p.size()) {
        size_t slash = p.find('/', start);
        if (slash == std::string::npos)
            slash = p.size();
        if (slash > start)
            out.push_back(p.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

std::string joinPath(const std::vector<std::string>& parts, size_t count) {
    std::string out;
    for (size_t i = 0; i < count && i < parts.size(); ++i) {
        if (!out.empty())
            out += '/';
        out += parts[i];
    }
    return out;
}

std::string mib(uint64_t bytes) {
    return std::to_string((bytes + kMiB - 1) / kMiB) + " MiB";
}

// An entry name made relative to destDir: nullopt-like empty vector when stripped away.
// Sets `problem` when the name is absolute or has a ".." component.
std::vector<std::string> vetName(const std::string& name, int strip, std::string& problem) {
    if (!name.empty() && name[0] == '/') {
        problem = "absolute path";
        return {};
    }
    std::vector<std::string> raw = splitPath(name);
    for (const auto& c : raw) {
        if (c == "..") {
            problem = "'..' component";
            return {};
        }
    }
    std::vector<std::string> out;
    for (size_t i = static_cast<size_t>(strip); i < raw.size(); ++i)
        if (raw[i] != ".")
            out.push_back(raw[i]);
    return out;
}

// Walks `pending` from root, replacing each symlink met on disk by its target: false when
// the walk climbs above root, meets an absolute target or loops. Names not on disk yet are
// taken literally.
bool staysInside(const std::string& root, std::deque<std::string> pending) {
    std::vector<std::string> cur;
    int links = 0;
    while (!pending.empty()) {
        std::string c = pending.front();
        pending.pop_front();
        if (c.empty() || c == ".")
            continue;
        if (c == "..") {
            if (cur.empty())
                return false;
            cur.pop_back();
            continue;
        }
        std::string p = root;
        for (const auto& d : cur)
            p += "/" + d;
        p += "/" + c;
        struct stat st {};
        if (lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++links > 40)
                return false;
            char buf[PATH_MAX];
            ssize_t n = readlink(p.c_str(), buf, sizeof buf - 1);
            if (n < 0)
                return false;
            std::string target(buf, static_cast<size_t>(n));
            if (target.empty() || target[0] == '/')
                return false;
            auto parts = splitPath(target);
            pending.insert(pending.begin(), parts.begin(), parts.end());
            continue;
        }
        cur.push_back(c);
    }
    return true;
}

struct ReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};

std::string archiveError(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

struct Symlink {
    std::vector<std::string> linkParts;
    std::string target;
};

}  // namespace

Outcome<ExtractStats> extractArchive(const ExtractOptions& o) {
    const std::string what = "archive '" + o.archivePath + "'";
    auto refuse = [&](const std::string& m) {
        return fail(FailureKind::kRefused, what + ": " + m);
    };

    // libarchive's symlink check also walks the destination's own path: resolve it first.
    char resolved[PATH_MAX];
    if (realpath(o.destDir.c_str(), resolved) == nullptr)
        return fail("destination '" + o.destDir + "': " + std::strerror(errno));
    const std::string root = resolved;

    struct stat ast {};
    if (stat(o.archivePath.c_str(), &ast) != 0)
        return fail(what + ": " + std::strerror(errno));

    uint64_t freeAtStart = UINT64_MAX;
    if (o.checkFreeSpace) {
        auto f = fs::freeBytes(root);
        if (!f)
            return tl::unexpected(f.error());
        freeAtStart = *f;
    }

    std::unique_ptr<archive, ReadDeleter> in(archive_read_new());
    std::unique_ptr<archive, WriteDeleter> out(archive_write_disk_new());
    if (!in || !out)
        return fail("out of memory");
    archive_read_support_filter_all(in.get());
    archive_read_support_format_all(in.get());
    archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                  ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                  ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    if (archive_read_open_filename(in.get(), o.archivePath.c_str(), 256 * 1024) != ARCHIVE_OK)
        return refuse("not a readable archive: " + archiveError(in.get()));

    ExtractStats stats;
    uint64_t needed = 0;     // bytes the tree takes on disk, rounded to blocks
    uint64_t unpacked = 0;   // file data decompressed so far (written or only counted)
    bool overSpace = false;  // from here on only count, to report the full size
    std::vector<Symlink> symlinks;
    int lastPercent = -1;

    auto cancelled = [&]() { return o.cancelled && o.cancelled(); };
    auto report = [&]() {
        if (!o.progress || ast.st_size <= 0)
            return;
        int64_t done = archive_filter_bytes(in.get(), -1);
        int pct = static_cast<int>(std::min<int64_t>(100, done * 100 / ast.st_size));
        if (pct != lastPercent) {
            lastPercent = pct;
            o.progress(pct);
        }
    };
    auto tooBig = [&]() {
        return refuse("unpacks to more than max_unpacked_bytes (" + mib(o.maxUnpackedBytes) + ")");
    };
    auto noSpace = [&]() {
        return refuse("needs " + mib(needed) + ", has " + mib(freeAtStart) + " free in '" +
                      o.destDir + "'");
    };

    for (;;) {
        archive_entry* e = nullptr;
        int r = archive_read_next_header(in.get(), &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            if (stats.entries == 0 && !overSpace)
                return refuse("not a readable archive: " + archiveError(in.get()));
            return refuse("corrupt archive: " + archiveError(in.get()));
        }
        if (cancelled())
            return fail(FailureKind::kCancelled, what + ": cancelled");

        const char* rawName = archive_entry_pathname(e);
        const std::string name = rawName ? rawName : "";
        const std::string entryWhat = "entry '" + name + "'";
        std::string problem;
        std::vector<std::string> parts = vetName(name, o.stripComponents, problem);
        if (!problem.empty())
            return refuse(entryWhat + ": " + problem);

        const mode_t type = archive_entry_filetype(e);
        const char* hardlink = archive_entry_hardlink(e);
        if (hardlink == nullptr && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
            return refuse(entryWhat + ": device nodes, FIFOs and sockets are not allowed");

        if (overSpace) {
            // Counting only: how much the whole archive would need.
        } else if (parts.empty()) {
            archive_read_data_skip(in.get());
            continue;
        } else if (hardlink != nullptr) {
            std::vector<std::string> t = vetName(hardlink, o.stripComponents, problem);
            if (!problem.empty())
                return refuse(entryWhat + ": hard link target " + problem);
            if (t.empty() || !staysInside(root, std::deque<std::string>(t.begin(), t.end())))
                return refuse(entryWhat + ": hard link leads outside the release directory");
            archive_entry_set_hardlink(e, (root + "/" + joinPath(t, t.size())).c_str());
        } else if (type == AE_IFLNK) {
            const char* rawTarget = archive_entry_symlink(e);
            const std::string target = rawTarget ? rawTarget : "";
            std::deque<std::string> walk(parts.begin(), parts.end() - 1);
            for (const auto& c : splitPath(target))
                walk.push_back(c);
            if (target.empty() || target[0] == '/' || !staysInside(root, walk))
                return refuse(entryWhat + ": symbolic link to '" + target +
                              "' leads outside the release directory");
            symlinks.push_back({parts, target});
        }

        const int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
        if (declared > 0 && unpacked + static_cast<uint64_t>(declared) > o.maxUnpackedBytes)
            return tooBig();

        if (!overSpace) {
            archive_entry_set_pathname(e, (root + "/" + joinPath(parts, parts.size())).c_str());
            archive_entry_set_perm(e, archive_entry_perm(e) & ~(S_ISUID | S_ISGID));
            if (type == AE_IFDIR)
                needed += kBlock;
            if (needed > freeAtStart)
                overSpace = true;
        }
        if (!overSpace) {
            r = archive_write_header(out.get(), e);
            if (r == ARCHIVE_FAILED)
                return refuse(entryWhat + ": " + archiveError(out.get()));
            if (r < ARCHIVE_WARN)
                return fail(what + ": " + entryWhat + ": " + archiveError(out.get()));
            ++stats.entries;
        }

        // The data, counted as it is decompressed.
        uint64_t fileBytes = 0;
        for (;;) {
            const void* buf = nullptr;
            size_t size = 0;
            la_int64_t offset = 0;
            r = archive_read_data_block(in.get(), &buf, &size, &offset);
            if (r == ARCHIVE_EOF)
                break;
            if (r < ARCHIVE_WARN)
                return refuse("corrupt archive at " + entryWhat + ": " + archiveError(in.get()));
            if (cancelled())
                return fail(FailureKind::kCancelled, what + ": cancelled");
            unpacked += size;
            if (unpacked > o.maxUnpackedBytes)
                return tooBig();
            const uint64_t before = (fileBytes + kBlock - 1) / kBlock;
            fileBytes += size;
            needed += ((fileBytes + kBlock - 1) / kBlock - before) * kBlock;
            if (needed > freeAtStart)
                overSpace = true;
            if (!overSpace) {
                la_ssize_t w = archive_write_data_block(out.get(), buf, size, offset);
                if (w < ARCHIVE_WARN) {
                    if (archive_errno(out.get()) == ENOSPC) {
                        overSpace = true;
                        continue;
                    }
                    return fail(what + ": writing " + entryWhat + ": " + archiveError(out.get()));
                }
                stats.bytes += size;
            }
            report();
        }
        if (!overSpace) {
            r = archive_write_finish_entry(out.get());
            if (r < ARCHIVE_WARN) {
                if (archive_errno(out.get()) == ENOSPC) {
                    overSpace = true;
                    continue;
                }
                return fail(what + ": finishing " + entryWhat + ": " + archiveError(out.get()));
            }
        }
    }
    if (overSpace)
        return noSpace();
    if (archive_write_close(out.get()) < ARCHIVE_WARN)
        return fail(what + ": " + archiveError(out.get()));

    // A later entry can change what an earlier link resolves to (a symlink to "." makes
    // "link/.." climb out): check every link against the finished tree.
    for (const auto& s : symlinks) {
        std::deque<std::string> walk(s.linkParts.begin(), s.linkParts.end() - 1);
        for (const auto& c : splitPath(s.target))
            walk.push_back(c);
        if (!staysInside(root, walk))
            return refuse("entry '" + joinPath(s.linkParts, s.linkParts.size()) +
                          "': symbolic link to '" + s.target +
                          "' leads outside the release directory");
    }
    if (o.progress)
        o.progress(100);
    return stats;
}

}  // namespace rra::plugin_support
