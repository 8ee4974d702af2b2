// Builds real archives at test time with libarchive's writer (any entry type, including
// hostile ones a normal tar refuses to create), plus a scratch directory helper.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace rra::test {

struct ArchiveEntry {
    std::string name;
    mode_t type = AE_IFREG;
    std::string content;  // AE_IFREG data
    std::string link;     // symlink target (AE_IFLNK) or hard link target
    bool hardlink = false;
    mode_t perm = 0644;
    uint64_t zeros = 0;  // AE_IFREG: this many zero bytes after content (bombs, big files)

    static ArchiveEntry file(std::string n, std::string c, mode_t p = 0644) {
        ArchiveEntry e;
        e.name = std::move(n);
        e.content = std::move(c);
        e.perm = p;
        return e;
    }
    static ArchiveEntry dir(std::string n) {
        ArchiveEntry e;
        e.name = std::move(n);
        e.type = AE_IFDIR;
        e.perm = 0755;
        return e;
    }
    static ArchiveEntry symlink(std::string n, std::string target) {
        ArchiveEntry e;
        e.name = std::move(n);
        e.type = AE_IFLNK;
        e.link = std::move(target);
        e.perm = 0777;
        return e;
    }
    static ArchiveEntry hardLink(std::string n, std::string target) {
        ArchiveEntry e;
        e.name = std::move(n);
        e.link = std::move(target);
        e.hardlink = true;
        return e;
    }
    static ArchiveEntry special(std::string n, mode_t type) {
        ArchiveEntry e;
        e.name = std::move(n);
        e.type = type;
        return e;
    }
};

enum class Compression { kNone, kGzip, kXz, kZstd };

inline void writeArchive(const std::string& path, const std::vector<ArchiveEntry>& entries,
                         Compression c = Compression::kGzip, bool zip = false) {
    archive* a = archive_write_new();
    if (zip) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        if (c == Compression::kGzip)
            archive_write_add_filter_gzip(a);
        if (c == Compression::kXz)
            archive_write_add_filter_xz(a);
        if (c == Compression::kZstd)
            archive_write_add_filter_zstd(a);
    }
    if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK)
        throw std::runtime_error(std::string("archive open: ") + archive_error_string(a));
    std::vector<char> zeros(1 << 20, '\0');
    for (const auto& e : entries) {
        archive_entry* ae = archive_entry_new();
        archive_entry_set_pathname(ae, e.name.c_str());
        archive_entry_set_perm(ae, e.perm);
        archive_entry_set_mtime(ae, 1700000000, 0);
        if (e.hardlink) {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_hardlink(ae, e.link.c_str());
            archive_entry_set_size(ae, 0);
        } else {
            archive_entry_set_filetype(ae, e.type);
            if (e.type == AE_IFLNK)
                archive_entry_set_symlink(ae, e.link.c_str());
            if (e.type == AE_IFCHR || e.type == AE_IFBLK)
                archive_entry_set_rdev(ae, makedev(1, 3));
            archive_entry_set_size(
                ae, e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size() + e.zeros) : 0);
        }
        if (archive_write_header(a, ae) != ARCHIVE_OK)
            throw std::runtime_error(std::string("archive header: ") + archive_error_string(a));
        if (e.type == AE_IFREG && !e.hardlink) {
            archive_write_data(a, e.content.data(), e.content.size());
            for (uint64_t left = e.zeros; left > 0;) {
                size_t n = left < zeros.size() ? static_cast<size_t>(left) : zeros.size();
                archive_write_data(a, zeros.data(), n);
                left -= n;
            }
        }
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
}

// A fresh directory under /tmp, removed with everything in it at scope exit.
class ScratchDir {
  public:
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "rra-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  private:
    std::string path_;
};

inline std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
    }
    chmod(path.c_str(), mode);
}

// Names below `dir` (recursive, relative, sorted), without following symlinks.
inline std::vector<std::string> listTree(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        out.push_back(std::filesystem::relative(it->path(), dir).string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace rra::test
