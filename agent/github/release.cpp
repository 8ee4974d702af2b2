// Release parsing and asset selection; see release.hpp.
#include "github/release.hpp"

#include "common/semver.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/String.h>

#include <cctype>

namespace rra::github {
namespace {

constexpr size_t kMaxListedNames = 20;

bool isHex64(const std::string& s) {
    if (s.size() != 64)
        return false;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return false;
    return true;
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
}

}  // namespace

Expected<ReleaseInfo> parseRelease(const std::string& json) {
    try {
        Poco::JSON::Parser parser;
        auto root = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
        if (!root)
            return fail(ErrorCode::kProtocol, "release JSON is not an object");
        ReleaseInfo r;
        r.id = root->optValue<Poco::Int64>("id", 0);
        r.tagName = root->optValue<std::string>("tag_name", "");
        r.draft = root->optValue<bool>("draft", false);
        r.prerelease = root->optValue<bool>("prerelease", false);
        auto assets = root->getArray("assets");
        if (assets) {
            for (size_t i = 0; i < assets->size(); ++i) {
                auto a = assets->getObject(static_cast<unsigned>(i));
                if (!a)
                    continue;
                AssetInfo info;
                info.id = a->optValue<Poco::Int64>("id", 0);
                info.name = a->optValue<std::string>("name", "");
                const Poco::Int64 size = a->optValue<Poco::Int64>("size", -1);
                if (size < 0)
                    return fail(ErrorCode::kProtocol, "asset '" + info.name + "' has no size");
                info.size = static_cast<uint64_t>(size);
                info.state = a->optValue<std::string>("state", "uploaded");
                info.contentType = a->optValue<std::string>("content_type", "");
                info.url = a->optValue<std::string>("url", "");
                info.browserDownloadUrl = a->optValue<std::string>("browser_download_url", "");
                if (a->has("digest") && !a->isNull("digest")) {
                    const std::string digest = a->getValue<std::string>("digest");
                    const std::string prefix = "sha256:";
                    if (digest.compare(0, prefix.size(), prefix) == 0 &&
                        isHex64(digest.substr(prefix.size()))) {
                        info.sha256 = Poco::toLower(digest.substr(prefix.size()));
                    } else {
                        // A digest we cannot check must not quietly become a size-only check.
                        info.digestError = "asset '" + info.name +
                                           "' has a digest this agent cannot check: '" +
                                           digest.substr(0, 80) + "' (expected sha256:<64 hex>)";
                    }
                }
                r.assets.push_back(std::move(info));
            }
        }
        return r;
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kProtocol, "bad release JSON: " + e.displayText());
    } catch (const std::exception& e) {
        return fail(ErrorCode::kProtocol, std::string("bad release JSON: ") + e.what());
    }
}

std::string expandAssetPattern(const std::string& pattern, const std::string& tag,
                               const std::string& arch) {
    std::string out = pattern;
    replaceAll(out, "{tag}", tag);
    replaceAll(out, "{version}", tag.rfind('v', 0) == 0 ? tag.substr(1) : tag);
    replaceAll(out, "{arch}", arch);
    return out;
}

Expected<AssetInfo> selectAsset(const ReleaseInfo& release, const std::string& pattern,
                                const std::string& tag, const std::string& arch,
                                bool allowPrerelease) {
    if (release.draft)
        return fail(ErrorCode::kNotFound, "release is a draft");
    if (!allowPrerelease) {
        if (release.prerelease)
            return fail(ErrorCode::kNotFound,
                        "release is marked prerelease and allow_prerelease is false");
        auto v = parseSemVer(tag);
        if (v && v->isPrerelease())
            return fail(ErrorCode::kNotFound,
                        "tag is a SemVer pre-release and allow_prerelease is false");
    }
    const std::string wanted = expandAssetPattern(pattern, tag, arch);
    std::string names;
    size_t listed = 0;
    for (const auto& a : release.assets) {
        if (a.name == wanted) {
            // An upload in progress will finish: not a reason to condemn the release.
            if (a.state == "starter" || a.state == "open")
                return fail(
                    ErrorCode::kHttp,
                    "asset '" + wanted + "' is still being uploaded (state '" + a.state + "')");
            if (a.state != "uploaded")
                return fail(ErrorCode::kRefused,
                            "asset '" + wanted + "' is not usable (state '" + a.state + "')");
            if (a.name.find('/') != std::string::npos || a.name == "." || a.name == "..")
                return fail(ErrorCode::kRefused, "asset name '" + a.name + "' is not a file name");
            if (!a.digestError.empty())
                return fail(ErrorCode::kRefused, a.digestError);
            return a;
        }
        // The list is for a human reading one log line: a release with thousands of assets
        // must not make it megabytes long.
        if (listed < kMaxListedNames) {
            names += (names.empty() ? "" : ", ") + a.name.substr(0, 200);
            ++listed;
        }
    }
    if (release.assets.size() > listed)
        names += " and " + std::to_string(release.assets.size() - listed) + " more";
    return fail(ErrorCode::kNotFound, "asset '" + wanted + "' not found; release has: " +
                                          (names.empty() ? std::string("no assets") : names));
}

}  // namespace rra::github
