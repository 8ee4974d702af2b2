// Tests of the fs helpers and the extractor used directly (the tarball tests cover the
// extractor through the plugin).
#include <boost/test/unit_test.hpp>

#include "plugin_support/archive_builder.hpp"
#include "support/extract.hpp"
#include "support/fs.hpp"

namespace ps = rra::plugin_support;
using rra::test::ArchiveEntry;
using rra::test::ScratchDir;

BOOST_AUTO_TEST_CASE(switch_symlink_replaces_atomically) {
    // Proves the switch replaces an existing link, leaves no temporary behind, and
    // readSymlink/removeSymlink agree.
    ScratchDir d;
    BOOST_REQUIRE(ps::fs::switchSymlink(d / "current", "releases/a"));
    BOOST_REQUIRE(ps::fs::switchSymlink(d / "current", "releases/b"));
    auto t = ps::fs::readSymlink(d / "current");
    BOOST_REQUIRE(t);
    BOOST_TEST(t->value_or("") == "releases/b");
    BOOST_TEST(rra::test::listTree(d.path()) == std::vector<std::string>{"current"});
    BOOST_REQUIRE(ps::fs::removeSymlink(d / "current"));
    BOOST_TEST(!ps::fs::readSymlink(d / "current")->has_value());
    rra::test::writeFile(d / "plain", "x");
    BOOST_TEST(!ps::fs::readSymlink(d / "plain"));
}

BOOST_AUTO_TEST_CASE(copy_and_free_space) {
    // Proves copyFileAtomic copies content and freeBytes reports a plausible number.
    ScratchDir d;
    rra::test::writeFile(d / "a", "hello");
    BOOST_REQUIRE(ps::fs::copyFileAtomic(d / "a", d / "b"));
    BOOST_TEST(rra::test::readFile(d / "b") == "hello");
    auto free = ps::fs::freeBytes(d.path());
    BOOST_REQUIRE(free);
    BOOST_TEST(*free > 0u);
}

BOOST_AUTO_TEST_CASE(extractor_counts_and_strips) {
    // Proves the extractor reports entries and bytes, strips components and skips entries
    // stripped to nothing.
    ScratchDir d;
    rra::test::writeArchive(d / "a.tgz",
                            {ArchiveEntry::dir("top"), ArchiveEntry::file("top/x", "12345"),
                             ArchiveEntry::file("top/sub/y", "abc")});
    std::filesystem::create_directories(d / "out");
    ps::ExtractOptions o;
    o.archivePath = d / "a.tgz";
    o.destDir = d / "out";
    o.stripComponents = 1;
    auto r = ps::extractArchive(o);
    BOOST_REQUIRE_MESSAGE(r, r.error().message);
    BOOST_TEST(r->entries == 2u);
    BOOST_TEST(r->bytes == 8u);
    BOOST_TEST(rra::test::readFile(d / "out/sub/y") == "abc");
}

BOOST_AUTO_TEST_CASE(extractor_refuses_bomb_by_counting) {
    // Proves the byte limit is enforced on decompressed data even when the header lies
    // low: the tar header claims the true size but the limit sits below it.
    ScratchDir d;
    ArchiveEntry big = ArchiveEntry::file("big", "");
    big.zeros = 3u << 20;
    rra::test::writeArchive(d / "b.tgz", {big});
    std::filesystem::create_directories(d / "out");
    ps::ExtractOptions o;
    o.archivePath = d / "b.tgz";
    o.destDir = d / "out";
    o.maxUnpackedBytes = 1u << 20;
    auto r = ps::extractArchive(o);
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.error().kind == ps::FailureKind::kRefused));
    BOOST_TEST(r.error().message.find("max_unpacked_bytes (1 MiB)") != std::string::npos);
}
