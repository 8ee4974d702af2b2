// File-system primitives on raw POSIX calls: every error names the path and the call.
#include "support/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

namespace rra::plugin_support::fs {

namespace {

std::string errnoText(const std::string& call, const std::string& path, int err = errno) {
    return call + " '" + path + "': " + std::strerror(err);
}

std::string parentOf(const std::string& path) {
    auto p = std::filesystem::path(path).parent_path().string();
    return p.empty() ? "." : p;
}

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0)
            close(fd);
    }
};

}  // namespace

Done fsyncPath(const std::string& path) {
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (f.fd < 0)
        return fail(errnoText("open", path));
    if (fsync(f.fd) != 0)
        return fail(errnoText("fsync", path));
    return {};
}

Done fsyncParent(const std::string& path) {
    return fsyncPath(parentOf(path));
}

Done syncFilesystem(const std::string& path) {
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0)
        return fail(errnoText("open", path));
    if (syncfs(f.fd) != 0)
        return fail(errnoText("syncfs", path));
    return {};
}

Done makeDirs(const std::string& path, unsigned mode) {
    std::string cur;
    std::filesystem::path p(path);
    for (const auto& part : p) {
        cur = cur.empty() ? part.string() : (cur == "/" ? "/" : cur + "/") + part.string();
        if (part == "/" || part.empty())
            continue;
        if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
            return fail(errnoText("mkdir", cur));
    }
    if (!isDirectory(path))
        return fail("'" + path + "' exists and is not a directory");
    return {};
}

Done switchSymlink(const std::string& linkPath, const std::string& target) {
    std::random_device rd;
    const std::string tmp =
        linkPath + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 1000000);
    unlink(tmp.c_str());
    if (symlink(target.c_str(), tmp.c_str()) != 0)
        return fail(errnoText("symlink", tmp));
    if (rename(tmp.c_str(), linkPath.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return fail(errnoText("rename over", linkPath, err));
    }
    return fsyncParent(linkPath);
}

void removeStaleSwitchTemps(const std::string& linkPath) {
    std::error_code ec;
    const std::string prefix = std::filesystem::path(linkPath).filename().string() + ".tmp-";
    for (const auto& e : std::filesystem::directory_iterator(parentOf(linkPath), ec)) {
        if (e.path().filename().string().rfind(prefix, 0) == 0)
            unlink(e.path().c_str());
    }
}

Done removeSymlink(const std::string& linkPath) {
    if (unlink(linkPath.c_str()) != 0 && errno != ENOENT)
        return fail(errnoText("unlink", linkPath));
    return fsyncParent(linkPath);
}

Outcome<std::optional<std::string>> readSymlink(const std::string& linkPath) {
    std::vector<char> buf(4096);
    ssize_t n = readlink(linkPath.c_str(), buf.data(), buf.size() - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return std::optional<std::string>();
        if (errno == EINVAL)
            return fail("'" + linkPath + "' exists but is not a symbolic link");
        return fail(errnoText("readlink", linkPath));
    }
    return std::optional<std::string>(std::string(buf.data(), static_cast<size_t>(n)));
}

Outcome<uint64_t> freeBytes(const std::string& path) {
    struct statvfs s {};
    if (statvfs(path.c_str(), &s) != 0)
        return fail(errnoText("statvfs", path));
    return static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize);
}

Done removeTree(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec)
        return fail("remove '" + path + "': " + ec.message());
    return {};
}

bool exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
}

bool isDirectory(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Done copyFileAtomic(const std::string& from, const std::string& to) {
    Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.fd < 0)
        return fail(errnoText("open", from));
    const std::string tmp = to + ".tmp-" + std::to_string(getpid());
    {
        Fd out(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (out.fd < 0)
            return fail(errnoText("create", tmp));
        std::vector<char> buf(1 << 16);
        for (;;) {
            ssize_t n = read(in.fd, buf.data(), buf.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int err = errno;
                unlink(tmp.c_str());
                return fail(errnoText("read", from, err));
            }
            if (n == 0)
                break;
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(out.fd, buf.data() + off, static_cast<size_t>(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0) {
                    int err = errno;
                    unlink(tmp.c_str());
                    return fail(errnoText("write", tmp, err));
                }
                off += w;
            }
        }
        if (fsync(out.fd) != 0) {
            int err = errno;
            unlink(tmp.c_str());
            return fail(errnoText("fsync", tmp, err));
        }
    }
    if (rename(tmp.c_str(), to.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return fail(errnoText("rename to", to, err));
    }
    return fsyncParent(to);
}

}  // namespace rra::plugin_support::fs
