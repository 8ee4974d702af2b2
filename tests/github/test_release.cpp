// Table tests of release parsing and asset selection (release.hpp): drafts, pre-releases,
// patterns, and the error that lists existing asset names.
#include <boost/test/unit_test.hpp>

#include "github/release.hpp"

using namespace rra;
using namespace rra::github;

namespace {

const char* kReleaseJson = R"({
  "id": 7, "tag_name": "v1.2.0", "name": "v1.2.0", "draft": false, "prerelease": false,
  "published_at": "2025-01-01T00:00:00Z",
  "assets": [
    {"id": 11, "name": "web-ui-1.2.0-arm64.tar.gz", "size": 1234, "state": "uploaded",
     "content_type": "application/gzip", "url": "https://api.github.com/repos/a/b/releases/assets/11",
     "browser_download_url": "https://github.com/a/b/releases/download/v1.2.0/web-ui-1.2.0-arm64.tar.gz",
     "digest": "sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
    {"id": 12, "name": "web-ui-1.2.0-amd64.tar.gz", "size": 99, "state": "uploaded",
     "url": "u", "browser_download_url": "b", "digest": null},
    {"id": 13, "name": "web-ui-1.2.0-armhf.tar.gz", "size": 5, "state": "starter",
     "url": "u", "browser_download_url": "b"}
  ]})";

}  // namespace

// Proves the fields the client relies on are read, digests normalised, null digests kept empty.
BOOST_AUTO_TEST_CASE(parse_release_reads_assets_and_digests) {
    auto r = parseRelease(kReleaseJson);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->tagName == "v1.2.0");
    BOOST_TEST_REQUIRE(r->assets.size() == 3u);
    BOOST_TEST(r->assets[0].id == 11);
    BOOST_TEST(r->assets[0].size == 1234u);
    BOOST_TEST(r->assets[0].sha256.value_or("") ==
               "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    BOOST_TEST(!r->assets[1].sha256.has_value());
    BOOST_TEST(r->assets[2].state == "starter");
    BOOST_TEST(!parseRelease("<html>").has_value());
    BOOST_TEST(static_cast<int>(parseRelease("[1,2]").error().code()) ==
               static_cast<int>(ErrorCode::kProtocol));
}

// Proves {tag}, {version} and {arch} expand as the config contract says.
BOOST_AUTO_TEST_CASE(pattern_expansion) {
    BOOST_TEST(expandAssetPattern("web-ui-{version}-{arch}.tar.gz", "v1.2.0", "arm64") ==
               "web-ui-1.2.0-arm64.tar.gz");
    BOOST_TEST(expandAssetPattern("x-{tag}-{tag}.deb", "v2", "amd64") == "x-v2-v2.deb");
    BOOST_TEST(expandAssetPattern("plain.bin", "v2", "amd64") == "plain.bin");
    // The contract strips a leading `v` only.
    BOOST_TEST(expandAssetPattern("app-{version}", "V1.0", "amd64") == "app-V1.0");
    BOOST_TEST(expandAssetPattern("app-{version}", "1.0", "amd64") == "app-1.0");
}

// Proves selection picks the named asset, and a miss lists what the release has.
BOOST_AUTO_TEST_CASE(select_asset_hit_and_miss) {
    auto r = parseRelease(kReleaseJson);
    BOOST_TEST_REQUIRE(r.has_value());
    auto a = selectAsset(*r, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "arm64", false);
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(a->id == 11);
    auto miss = selectAsset(*r, "web-ui-{version}-{arch}.zip", "v1.2.0", "arm64", false);
    BOOST_TEST_REQUIRE(!miss.has_value());
    BOOST_TEST(static_cast<int>(miss.error().code()) == static_cast<int>(ErrorCode::kNotFound));
    BOOST_TEST(miss.error().message() ==
               "asset 'web-ui-1.2.0-arm64.zip' not found; release has: web-ui-1.2.0-arm64.tar.gz, "
               "web-ui-1.2.0-amd64.tar.gz, web-ui-1.2.0-armhf.tar.gz");
}

// Proves an asset still being uploaded (state starter/open) is a transient error, not a bad
// release, while an unknown state is refused.
BOOST_AUTO_TEST_CASE(asset_upload_in_progress_is_transient) {
    auto r = parseRelease(kReleaseJson);
    BOOST_TEST_REQUIRE(r.has_value());
    auto starter = selectAsset(*r, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "armhf", false);
    BOOST_TEST_REQUIRE(!starter.has_value());
    BOOST_TEST(static_cast<int>(starter.error().code()) == static_cast<int>(ErrorCode::kHttp));
    r->assets[2].state = "open";
    auto open = selectAsset(*r, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "armhf", false);
    BOOST_TEST(static_cast<int>(open.error().code()) == static_cast<int>(ErrorCode::kHttp));
    r->assets[2].state = "deleted";
    auto odd = selectAsset(*r, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "armhf", false);
    BOOST_TEST(static_cast<int>(odd.error().code()) == static_cast<int>(ErrorCode::kRefused));
}

// Proves a digest the agent cannot check (63 hex, another algorithm) refuses the asset with a
// clear error instead of falling back to the size check; upper-case hex is fine.
BOOST_AUTO_TEST_CASE(malformed_digest_refused) {
    const std::string hex63(63, 'a');
    for (const std::string& digest :
         {"sha256:" + hex63, "sha512:" + std::string(128, 'a'), std::string("sha256:"),
          "sha256:" + hex63 + "g", std::string("garbage")}) {
        const std::string json = R"({"tag_name":"v1","assets":[{"id":1,"name":"a.bin","size":3,)"
                                 R"("state":"uploaded","digest":")" +
                                 digest + R"("}]})";
        auto r = parseRelease(json);
        BOOST_TEST_REQUIRE(r.has_value());
        auto a = selectAsset(*r, "a.bin", "v1", "arm64", false);
        BOOST_TEST_REQUIRE(!a.has_value(), digest);
        BOOST_TEST(static_cast<int>(a.error().code()) == static_cast<int>(ErrorCode::kRefused));
        BOOST_TEST(a.error().message().find("digest") != std::string::npos);
    }
    const std::string upper = R"({"tag_name":"v1","assets":[{"id":1,"name":"a.bin","size":3,)"
                              R"("state":"uploaded","digest":"sha256:)" +
                              std::string(64, 'A') + R"("}]})";
    auto ok = selectAsset(*parseRelease(upper), "a.bin", "v1", "arm64", false);
    BOOST_TEST_REQUIRE(ok.has_value());
    BOOST_TEST(ok->sha256.value_or("") == std::string(64, 'a'));
}

// Proves the "release has:" list stops after 20 names and says how many it left out.
BOOST_AUTO_TEST_CASE(missing_asset_lists_at_most_20_names) {
    ReleaseInfo r;
    r.tagName = "v1";
    for (int i = 0; i < 1000; ++i) {
        AssetInfo a;
        a.name = "file-" + std::to_string(i);
        r.assets.push_back(a);
    }
    auto miss = selectAsset(r, "nothing", "v1", "arm64", false);
    BOOST_TEST_REQUIRE(!miss.has_value());
    BOOST_TEST(miss.error().message().find("file-19, file-20") == std::string::npos);
    BOOST_TEST(miss.error().message().find("file-19 and 980 more") != std::string::npos);
    BOOST_TEST(miss.error().message().size() < 400u);
}

// Proves drafts are never used and pre-releases (flag or SemVer tag) only when allowed.
BOOST_AUTO_TEST_CASE(draft_and_prerelease_rules) {
    auto base = parseRelease(kReleaseJson);
    BOOST_TEST_REQUIRE(base.has_value());
    ReleaseInfo draft = *base;
    draft.draft = true;
    BOOST_TEST(!selectAsset(draft, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "arm64", true));
    ReleaseInfo pre = *base;
    pre.prerelease = true;
    BOOST_TEST(!selectAsset(pre, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "arm64", false));
    BOOST_TEST(
        selectAsset(pre, "web-ui-{version}-{arch}.tar.gz", "v1.2.0", "arm64", true).has_value());
    ReleaseInfo rc = *base;
    rc.assets[0].name = "web-ui-1.3.0-rc.1-arm64.tar.gz";
    auto notAllowed =
        selectAsset(rc, "web-ui-{version}-{arch}.tar.gz", "v1.3.0-rc.1", "arm64", false);
    BOOST_TEST_REQUIRE(!notAllowed.has_value());
    BOOST_TEST(static_cast<int>(notAllowed.error().code()) ==
               static_cast<int>(ErrorCode::kNotFound));
    BOOST_TEST(selectAsset(rc, "web-ui-{version}-{arch}.tar.gz", "v1.3.0-rc.1", "arm64", true)
                   .has_value());
}
