// File-system primitives for crash-safe deployment: durable writes (fsync of files and
// directories), the atomic symlink switch, free space, recursive removal.
#pragma once

#include "support/outcome.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace rra::plugin_support::fs {

// fsync of one file or directory.
Done fsyncPath(const std::string& path);
// fsync of the directory holding `path`, making a rename/create/unlink of it durable.
Done fsyncParent(const std::string& path);
// syncfs(2) of the file system holding `path`: one call flushes everything just written
// there (what `sync -f` does), much cheaper than an fsync per file of a large tree.
Done syncFilesystem(const std::string& path);

// mkdir -p with `mode` for the directories it creates.
Done makeDirs(const std::string& path, unsigned mode = 0755);

// Points `linkPath` at `target` atomically: a new symlink next to it, rename(2) over the
// old one, then fsync of the directory. A crash leaves either the old or the new link
// (and possibly a stray "<link>.tmp-*" that removeStaleSwitchTemps() clears).
Done switchSymlink(const std::string& linkPath, const std::string& target);
// Removes the stray temporaries a crash inside switchSymlink() can leave.
void removeStaleSwitchTemps(const std::string& linkPath);
// Removes the symlink (missing is fine) and fsyncs its directory.
Done removeSymlink(const std::string& linkPath);
// The symlink's target; nullopt when `linkPath` does not exist. Fails when it exists but
// is not a symlink.
Outcome<std::optional<std::string>> readSymlink(const std::string& linkPath);

// Bytes available to an unprivileged writer on the file system holding `path`.
Outcome<uint64_t> freeBytes(const std::string& path);
// Removes `path` and everything below it without following symlinks; missing is fine.
Done removeTree(const std::string& path);
bool exists(const std::string& path);
bool isDirectory(const std::string& path);  // follows symlinks

// Copies `from` to `to` durably: a temporary next to `to`, fsync, rename, fsync of the dir.
Done copyFileAtomic(const std::string& from, const std::string& to);

}  // namespace rra::plugin_support::fs
