// In-flight marker files; see inflight_marker.hpp.
#include "deploy/inflight_marker.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rra::deploy {
namespace {

std::string errnoText() {
    return std::strerror(errno);
}

Status makeDirs(const std::string& path) {
    std::string partial;
    std::istringstream in(path);
    std::string part;
    if (!path.empty() && path[0] == '/')
        partial = "/";
    while (std::getline(in, part, '/')) {
        if (part.empty())
            continue;
        partial += part + "/";
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
            return fail(ErrorCode::kIo,
                        "cannot create directory '" + partial + "': " + errnoText());
    }
    return {};
}

Status writeAll(int fd, const std::string& data, const std::string& where) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(ErrorCode::kIo, "cannot write '" + where + "': " + errnoText());
        }
        off += static_cast<size_t>(n);
    }
    return {};
}

std::optional<ApplyPhase> phaseFromString(const std::string& s) {
    if (s == "download")
        return ApplyPhase::kDownload;
    if (s == "install")
        return ApplyPhase::kInstall;
    if (s == "verify")
        return ApplyPhase::kVerify;
    return std::nullopt;
}

}  // namespace

MarkerStore::MarkerStore(std::string runtimeDir) {
    if (!runtimeDir.empty())
        dir_ = runtimeDir + "/inflight";
}

std::string MarkerStore::pathFor(const std::string& component) const {
    return dir_ + "/" + component + ".json";
}

Status MarkerStore::write(const InflightMarker& m) const {
    if (!enabled())
        return {};
    if (auto st = makeDirs(dir_); !st)
        return st;
    Poco::JSON::Object obj;
    obj.set("component", m.component);
    obj.set("tag", m.tag);
    if (m.fromTag)
        obj.set("from_tag", *m.fromTag);
    else
        obj.set("from_tag", Poco::Dynamic::Var());
    obj.set("phase", std::string(toString(m.phase)));
    obj.set("started_at_ms", static_cast<Poco::Int64>(m.startedAtMs));
    obj.set("interrupted", m.interrupted);
    obj.set("recovering", m.recovering);
    std::ostringstream os;
    obj.stringify(os);
    const std::string path = pathFor(m.component);
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(ErrorCode::kIo, "cannot create '" + tmp + "': " + errnoText());
    Status st = writeAll(fd, os.str() + "\n", tmp);
    if (st && ::fsync(fd) != 0)
        st = fail(ErrorCode::kIo, "cannot fsync '" + tmp + "': " + errnoText());
    ::close(fd);
    if (!st) {
        ::unlink(tmp.c_str());
        return st;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        Error e(ErrorCode::kIo, "cannot rename '" + tmp + "' to '" + path + "': " + errnoText());
        ::unlink(tmp.c_str());
        return fail(e);
    }
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

Expected<std::optional<InflightMarker>> MarkerStore::read(const std::string& component) const {
    if (!enabled())
        return std::optional<InflightMarker>();
    const std::string path = pathFor(component);
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT)
            return std::optional<InflightMarker>();
        return fail(ErrorCode::kIo, "cannot read marker '" + path + "': " + errnoText());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        Poco::JSON::Parser parser;
        auto obj = parser.parse(ss.str()).extract<Poco::JSON::Object::Ptr>();
        InflightMarker m;
        m.component = component;
        m.tag = obj->getValue<std::string>("tag");
        if (obj->has("from_tag") && !obj->isNull("from_tag"))
            m.fromTag = obj->getValue<std::string>("from_tag");
        auto phase = phaseFromString(obj->optValue<std::string>("phase", "install"));
        m.phase = phase ? *phase : ApplyPhase::kInstall;
        m.startedAtMs = obj->optValue<Poco::Int64>("started_at_ms", 0);
        m.interrupted = obj->optValue<bool>("interrupted", false);
        m.recovering = obj->optValue<bool>("recovering", false);
        if (m.tag.empty())
            return fail(ErrorCode::kIo, "marker '" + path + "': empty tag");
        return std::optional<InflightMarker>(m);
    } catch (const Poco::Exception& e) {
        return fail(ErrorCode::kIo, "marker '" + path + "': " + e.displayText());
    } catch (const std::exception& e) {
        return fail(ErrorCode::kIo, "marker '" + path + "': " + e.what());
    }
}

Status MarkerStore::remove(const std::string& component) const {
    if (!enabled())
        return {};
    const std::string path = pathFor(component);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return fail(ErrorCode::kIo, "cannot remove marker '" + path + "': " + errnoText());
    return {};
}

}  // namespace rra::deploy
