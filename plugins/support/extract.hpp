// Safe archive extraction (libarchive: tar, tar.gz/xz/zst/bz2, zip, ...) into a fresh
// directory, refusing the whole archive when any entry is hostile. Shared by the tarball
// deployer and the self-update plugin.
#pragma once

#include "support/outcome.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace rra::plugin_support {

struct ExtractOptions {
    std::string archivePath;
    // Target directory: must exist and should be empty and private to this extraction
    // (e.g. "releases/.<tag>.partial"). Entries are written below it and nowhere else.
    std::string destDir;
    // Leading path components dropped from every entry (like tar --strip-components);
    // entries left with no name are skipped.
    int stripComponents = 0;
    // Refuse when the archive unpacks to more (counted as data is decompressed: header
    // sizes are not trusted).
    uint64_t maxUnpackedBytes = uint64_t(4) << 30;
    // Refuse when the archive needs more than the free space of destDir's file system.
    bool checkFreeSpace = true;
    // Polled once per data block; true stops with kCancelled.
    std::function<bool()> cancelled;
    // Percent of the archive file consumed, called when it changes.
    std::function<void(int percent)> progress;
};

struct ExtractStats {
    uint64_t entries = 0;  // entries written
    uint64_t bytes = 0;    // file data written
};

// Extracts the archive into options.destDir.
//
// Refused (kRefused, nothing written outside destDir) when an entry has an absolute name
// or a ".." component, is a symlink or hard link whose target resolves outside destDir, is
// a device node, FIFO or socket, would be written through a symlink, or when the data
// exceeds maxUnpackedBytes or the free space ("needs N MiB, has M MiB"); also when the
// file is not a readable archive. setuid/setgid bits are cleared; owners are not restored
// (files belong to the agent's user). kError for I/O failures, kCancelled on cancellation.
//
// On any failure destDir may hold part of the tree: the caller removes it. Nothing is
// fsynced here; see fs::syncFilesystem().
Outcome<ExtractStats> extractArchive(const ExtractOptions& options);

}  // namespace rra::plugin_support
