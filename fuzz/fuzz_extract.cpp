// Fuzz target: archive extraction (plugin support's extractArchive, which the tarball and
// self deployers use) into a temp directory. The input is the archive file (any format
// libarchive reads). Properties: no crash; nothing is created, removed or changed outside
// the destination (the scanned tree holds the destination's siblings, a victim file and
// the process's working directory); an accepted archive leaves no device, FIFO or socket
// and no symlink that resolves outside the destination.
#include "fuzz_check.hpp"
#include "support/extract.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>

namespace fs = std::filesystem;

namespace {

const char kVictim[] = "the agent's own file: must survive every archive\n";

struct Jail {
    fs::path root, dest, archive, victim;
    std::set<std::string> expected;  // every path below root outside dest, relative

    Jail() {
        char tmpl[] = "/tmp/rra-fuzz-extract.XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        RRA_FUZZ_CHECK(d != nullptr, "scratch directory");
        root = d;
        fs::create_directories(root / "cwd");
        fs::create_directories(root / "jail/dest");
        victim = root / "jail/victim.txt";
        std::ofstream(victim) << kVictim;
        archive = root / "input.archive";
        dest = root / "jail/dest";
        // A relative write that forgets the destination lands here, inside the scan.
        RRA_FUZZ_CHECK(::chdir((root / "cwd").c_str()) == 0, "chdir into the scratch tree");
        expected = {"cwd", "jail", "jail/dest", "jail/victim.txt", "input.archive"};
    }

    // Every path below root, outside dest, that is not expected.
    std::string strayPath() const {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(root, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const fs::path p = it->path();
            if (p == dest) {
                it.disable_recursion_pending();
                continue;
            }
            const std::string rel = p.lexically_relative(root).string();
            if (!expected.count(rel))
                return rel;
        }
        return {};
    }

    bool victimIntact() const {
        struct stat st {};
        if (::lstat(victim.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            return false;
        std::ifstream in(victim, std::ios::binary);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return s == kVictim;
    }

    // For an accepted archive: the tree below dest holds only files, directories and
    // symlinks that stay inside dest.
    std::string badEntryInDest() const {
        std::error_code ec;
        const fs::path realDest = fs::canonical(dest, ec);
        for (auto it = fs::recursive_directory_iterator(dest, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const fs::path p = it->path();
            const auto st = fs::symlink_status(p);
            if (fs::is_symlink(st)) {
                std::error_code e2;
                const fs::path target = fs::weakly_canonical(p, e2);
                if (e2)
                    continue;  // a link loop inside dest: harmless, it resolves nowhere
                const std::string rel = target.lexically_relative(realDest).string();
                if (rel.empty() || rel.rfind("..", 0) == 0)
                    return "symlink leaving the destination: " + p.string();
            } else if (!fs::is_regular_file(st) && !fs::is_directory(st)) {
                return "special file: " + p.string();
            }
        }
        return {};
    }

    void reset() {
        std::error_code ec;
        // Entries may have been made read-only; the owner (we) can still chmod them.
        for (auto it = fs::recursive_directory_iterator(dest, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (!fs::is_symlink(it->symlink_status()))
                ::chmod(it->path().c_str(), 0700);
        }
        fs::remove_all(dest, ec);
        fs::create_directories(dest, ec);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Jail jail;
    {
        std::ofstream out(jail.archive, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    rra::plugin_support::ExtractOptions o;
    o.archivePath = jail.archive.string();
    o.destDir = jail.dest.string();
    o.stripComponents = size > 0 ? data[0] % 3 : 0;
    o.maxUnpackedBytes = 8u << 20;
    auto r = rra::plugin_support::extractArchive(o);

    const std::string stray = jail.strayPath();
    if (!stray.empty())
        std::fprintf(stderr, "written outside the destination: %s\n", stray.c_str());
    RRA_FUZZ_CHECK(stray.empty(), "nothing is written outside the destination");
    RRA_FUZZ_CHECK(jail.victimIntact(), "the victim file beside the destination is untouched");
    if (r) {
        const std::string bad = jail.badEntryInDest();
        if (!bad.empty())
            std::fprintf(stderr, "accepted archive left %s\n", bad.c_str());
        RRA_FUZZ_CHECK(bad.empty(), "an accepted archive leaves only safe entries");
        RRA_FUZZ_CHECK(r->bytes <= o.maxUnpackedBytes, "the byte limit holds");
    } else {
        RRA_FUZZ_CHECK(!r.error().message.empty(), "a refused archive says why");
    }
    jail.reset();
    return 0;
}
