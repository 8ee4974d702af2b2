#include "config/config_loader.hpp"

#include "common/semver.hpp"
#include "common/version.hpp"
#include "config/json_syntax.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/URI.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

namespace rra::config {
namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Object;

// Collects problems for one file, prefixing each with the file and the key path.
struct Report {
    std::vector<std::string>& errors;
    std::vector<std::string>& warnings;
    std::string file;

    void error(const std::string& key, const std::string& what) {
        errors.push_back(file + ": " + (key.empty() ? "" : key + ": ") + what);
    }
    void warning(const std::string& key, const std::string& what) {
        warnings.push_back(file + ": " + (key.empty() ? "" : key + ": ") + what);
    }
};

std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
}

// Typed access to one JSON object that remembers which keys were read, so the rest can
// be reported as unknown.
class Fields {
  public:
    Fields(Object::Ptr obj, std::string prefix, Report& report)
        : obj_(std::move(obj)), prefix_(std::move(prefix)), r_(report) {}

    bool has(const std::string& k) {
        known_.insert(k);
        return obj_->has(k) && !obj_->isNull(k);
    }

    std::optional<std::string> str(const std::string& k, bool required = false) {
        known_.insert(k);
        if (!obj_->has(k) || obj_->isNull(k)) {
            if (required)
                r_.error(join(prefix_, k), "required");
            return std::nullopt;
        }
        Var v = obj_->get(k);
        if (!v.isString()) {
            r_.error(join(prefix_, k), "must be a string");
            return std::nullopt;
        }
        std::string s = v.convert<std::string>();
        if (required && s.empty()) {
            r_.error(join(prefix_, k), "must not be empty");
            return std::nullopt;
        }
        return s;
    }

    std::optional<double> number(const std::string& k, double min, double max) {
        known_.insert(k);
        if (!obj_->has(k) || obj_->isNull(k))
            return std::nullopt;
        Var v = obj_->get(k);
        if (!v.isNumeric() || v.type() == typeid(bool)) {
            r_.error(join(prefix_, k), "must be a number");
            return std::nullopt;
        }
        double d = v.convert<double>();
        if (!std::isfinite(d) || d < min || d > max) {
            std::ostringstream os;
            os << "must be between " << min << " and " << max << " (got " << d << ")";
            r_.error(join(prefix_, k), os.str());
            return std::nullopt;
        }
        return d;
    }

    std::optional<int> integer(const std::string& k, int min, int max) {
        known_.insert(k);
        if (!obj_->has(k) || obj_->isNull(k))
            return std::nullopt;
        Var v = obj_->get(k);
        long long n = 0;
        if (v.isInteger() && v.type() != typeid(bool)) {
            try {
                n = v.convert<long long>();
            } catch (const Poco::Exception&) {
                r_.error(join(prefix_, k), "integer out of range");
                return std::nullopt;
            }
        } else if (v.isNumeric() && v.type() != typeid(bool)) {
            // 8.0 is the integer 8, as the plugins' SettingsReader reads it too.
            double d = v.convert<double>();
            if (!std::isfinite(d) || std::floor(d) != d) {
                r_.error(join(prefix_, k), "must be an integer");
                return std::nullopt;
            }
            if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
                std::ostringstream os;
                os << "must be between " << min << " and " << max << " (got " << d << ")";
                r_.error(join(prefix_, k), os.str());
                return std::nullopt;
            }
            n = static_cast<long long>(d);
        } else {
            r_.error(join(prefix_, k), "must be an integer");
            return std::nullopt;
        }
        if (n < min || n > max) {
            r_.error(join(prefix_, k), "must be between " + std::to_string(min) + " and " +
                                           std::to_string(max) + " (got " + std::to_string(n) +
                                           ")");
            return std::nullopt;
        }
        return static_cast<int>(n);
    }

    // A file or directory name: an empty string would silently mean the current
    // directory or the default, so it is refused; null or no key means the default.
    std::optional<std::string> path(const std::string& k) {
        auto s = str(k);
        if (s && s->empty()) {
            r_.error(join(prefix_, k), "must not be empty (leave the key out for the default)");
            return std::nullopt;
        }
        return s;
    }

    std::optional<bool> boolean(const std::string& k) {
        known_.insert(k);
        if (!obj_->has(k) || obj_->isNull(k))
            return std::nullopt;
        Var v = obj_->get(k);
        if (v.type() != typeid(bool)) {
            r_.error(join(prefix_, k), "must be true or false");
            return std::nullopt;
        }
        return v.extract<bool>();
    }

    Object::Ptr object(const std::string& k, bool required = false) {
        known_.insert(k);
        if (!obj_->has(k) || obj_->isNull(k)) {
            if (required)
                r_.error(join(prefix_, k), "required");
            return nullptr;
        }
        Object::Ptr o = obj_->getObject(k);
        if (!o)
            r_.error(join(prefix_, k), "must be an object");
        return o;
    }

    void reportUnknown() {
        for (const auto& name : obj_->getNames())
            if (!known_.count(name))
                r_.warning(join(prefix_, name), "unknown key (ignored)");
    }

    const std::string& prefix() const { return prefix_; }

  private:
    Object::Ptr obj_;
    std::string prefix_;
    Report& r_;
    std::set<std::string> known_;
};

// Config and token files are small; anything bigger is a mistake (--config=/dev/zero, a
// log file named *.json) and must not eat the memory of a Raspberry Pi.
constexpr off_t kMaxFileBytes = 1 << 20;

// Reads a regular file. The open does not block (a FIFO named x.json would hang the
// agent) and the type is checked on the opened file, so nothing can be swapped in between.
std::optional<std::string> readFile(const std::string& path, std::string& why) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        why = "cannot read: " + std::string(strerror(errno));
        return std::nullopt;
    }
    struct stat st {};
    std::string text;
    if (::fstat(fd, &st) != 0) {
        why = "cannot read: " + std::string(strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        why = S_ISDIR(st.st_mode) ? "not a regular file (a directory)" : "not a regular file";
    } else if (st.st_size > kMaxFileBytes) {
        why = "too large (" + std::to_string(st.st_size) + " bytes; the limit is 1 MiB)";
    } else {
        char buf[65536];
        while (true) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                why = "cannot read: " + std::string(strerror(errno));
                break;
            }
            if (n == 0)
                break;
            text.append(buf, static_cast<size_t>(n));
            if (text.size() > static_cast<size_t>(kMaxFileBytes)) {
                why = "too large (more than 1 MiB)";  // grew while we read it
                break;
            }
        }
    }
    ::close(fd);
    if (!why.empty())
        return std::nullopt;
    return text;
}

// Parses `text` as a JSON object; on failure reports the line and column.
Object::Ptr parseObject(std::string text, Report& r) {
    auto place = [](int line, int column) {
        return "line " + std::to_string(line) + ", column " + std::to_string(column);
    };
    auto check = checkJsonSyntax(text);
    for (const auto& w : check.warnings)
        r.warning(w.key, w.message + " at " + place(w.line, w.column));
    if (auto syntax = check.error) {
        if (!syntax->key.empty())
            r.error(syntax->key, syntax->message + " at " + place(syntax->line, syntax->column));
        else
            r.error("", "malformed JSON at " + place(syntax->line, syntax->column) + ": " +
                            syntax->message);
        return nullptr;
    }
    // The syntax check skips a byte order mark; Poco's parser does not.
    if (text.compare(0, kUtf8Bom.size(), kUtf8Bom) == 0)
        text.erase(0, kUtf8Bom.size());
    try {
        Poco::JSON::Parser parser;
        Var v = parser.parse(text);
        if (v.type() != typeid(Object::Ptr)) {
            r.error("", "must hold a JSON object");
            return nullptr;
        }
        return v.extract<Object::Ptr>();
    } catch (const Poco::Exception& e) {
        r.error("", "malformed JSON: " + e.displayText());
        return nullptr;
    }
}

std::string trim(const std::string& s) {
    const char* ws = " \t\r\n\f\v";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos)
        return "";
    size_t e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

std::string dirName(const std::string& p) {
    size_t slash = p.find_last_of('/');
    if (slash == std::string::npos)
        return ".";
    if (slash == 0)
        return "/";
    return p.substr(0, slash);
}

// A token from a file: the file must exist, be private, and hold something.
std::optional<Secret> readTokenFile(const std::string& path, const std::string& key, Report& r) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        r.error(key, "token file '" + path + "': " + strerror(errno));
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
        r.error(key, "token file '" + path + "' is not a regular file");
        return std::nullopt;
    }
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        r.error(key, "token file '" + path + "' has mode " + mode +
                         ": it must not be readable by group or others (chmod 600)");
        return std::nullopt;
    }
    // The contract refuses only readable files; a writable one cannot leak the token but
    // lets others replace it, which deserves a word.
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        r.warning(key, "token file '" + path + "' has mode " + mode +
                           ": group or others may replace the token (chmod 600)");
    std::string why;
    auto text = readFile(path, why);
    if (!text) {
        r.error(key, "token file '" + path + "': " + why);
        return std::nullopt;
    }
    std::string token = trim(*text);
    if (token.empty()) {
        r.error(key, "token file '" + path + "' is empty");
        return std::nullopt;
    }
    return Secret(token);
}

// Contract "Secrets": token_file, else $CREDENTIALS_DIRECTORY/<credential>, else $<envVar>.
void resolveToken(const std::optional<std::string>& tokenFile, const std::string& key,
                  const std::string& credential, const std::string& envVar,
                  const LoadEnvironment& env, Report& r, Secret& out, std::string& source) {
    if (tokenFile) {
        if (auto t = readTokenFile(*tokenFile, key, r)) {
            out = *t;
            source = *tokenFile;
        }
        return;
    }
    if (auto dir = env.getenv("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
        std::string path = *dir + "/" + credential;
        if (::access(path.c_str(), F_OK) == 0) {
            if (auto t = readTokenFile(path, "$CREDENTIALS_DIRECTORY/" + credential, r)) {
                out = *t;
                source = path;
            }
            return;
        }
    }
    if (auto v = env.getenv(envVar); v && !trim(*v).empty()) {
        out = Secret(trim(*v));
        source = "$" + envVar;
    }
}

void checkCaFile(const std::optional<std::string>& ca, const std::string& key, Report& r) {
    if (!ca)
        return;
    if (::access(ca->c_str(), R_OK) != 0)
        r.error(key, "CA file '" + *ca + "': " + strerror(errno));
}

const std::regex& componentNameRe() {
    static const std::regex re("[a-z0-9][a-z0-9._-]{0,63}");
    return re;
}
const std::regex& repoRe() {
    static const std::regex re("[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}");
    return re;
}
const std::regex& agentIdRe() {
    static const std::regex re("[A-Za-z0-9._-]{1,64}");
    return re;
}

bool validLogLevel(const std::string& l) {
    static const char* levels[] = {"none",   "fatal",       "critical", "error", "warning",
                                   "notice", "information", "debug",    "trace"};
    return std::find(std::begin(levels), std::end(levels), l) != std::end(levels);
}

void readAgent(Object::Ptr o, Report& r, AgentSection& a) {
    Fields f(o, "agent", r);
    if (auto v = f.str("id")) {
        if (!std::regex_match(*v, agentIdRe()))
            r.error("agent.id", "'" + *v + "' must match [A-Za-z0-9._-]{1,64}");
        else
            a.id = *v;
    }
    if (auto v = f.str("arch")) {
        if (v->empty())
            r.error("agent.arch", "must not be empty");
        else
            a.arch = *v;
    }
    if (auto v = f.path("plugin_dir"))
        a.pluginDir = *v;
    if (auto v = f.path("work_dir"))
        a.workDir = *v;
    if (auto v = f.path("components_dir"))
        a.componentsDir = *v;
    if (auto v = f.path("runtime_dir"))
        a.runtimeDir = *v;
    if (auto v = f.integer("max_parallel_downloads", 1, 64))
        a.maxParallelDownloads = *v;
    if (auto v = f.str("log_level")) {
        if (!validLogLevel(*v))
            r.error("agent.log_level", "'" + *v +
                                           "' is not one of none, fatal, critical, error, "
                                           "warning, notice, information, debug, trace");
        else
            a.logLevel = *v;
    }
    if (auto v = f.number("apply_jitter_s", 0, 86400))
        a.applyJitterS = *v;
    f.reportUnknown();
}

const char* const kProxyUrlRequired =
    "required: set it to the raspi-release-proxy's URL (wss://HOST)";

void readProxy(Object::Ptr o, Report& r, ProxySection& p, std::optional<std::string>& tokenFile) {
    Fields f(o, "proxy", r);
    const bool present = f.has("url");
    auto url = f.str("url");  // a value of the wrong type is reported here
    if (!present || (url && url->empty()))
        r.error("proxy.url", kProxyUrlRequired);
    if (auto v = url; v && !v->empty()) {
        try {
            Poco::URI uri(*v);
            if (uri.getScheme() != "ws" && uri.getScheme() != "wss")
                r.error("proxy.url", "'" + *v + "' must start with ws:// or wss://");
            else if (uri.getHost().empty())
                r.error("proxy.url", "'" + *v + "' has no host");
            else if (!uri.getUserInfo().empty())
                r.error("proxy.url", "must not carry credentials; use proxy.token_file");
            else
                p.url = *v;
        } catch (const Poco::Exception& e) {
            r.error("proxy.url", "not a valid URL: " + e.displayText());
        }
    }
    tokenFile = f.path("token_file");
    p.caFile = f.path("ca_file");
    checkCaFile(p.caFile, "proxy.ca_file", r);
    if (auto v = f.number("heartbeat_s", 0.1, 3600))
        p.heartbeatS = static_cast<int>(std::ceil(*v));
    if (auto v = f.integer("reconnect_initial_ms", 1, 3600000))
        p.reconnectInitialMs = *v;
    if (auto v = f.integer("reconnect_max_ms", 1, 86400000))
        p.reconnectMaxMs = *v;
    if (p.reconnectMaxMs < p.reconnectInitialMs) {
        // The cap wins: every reconnect waits reconnect_max_ms. Lowering the initial delay
        // gives exactly that with a policy that keeps max >= initial.
        r.warning("proxy.reconnect_max_ms", std::to_string(p.reconnectMaxMs) +
                                                " is smaller than proxy.reconnect_initial_ms (" +
                                                std::to_string(p.reconnectInitialMs) +
                                                "): every reconnect waits " +
                                                std::to_string(p.reconnectMaxMs) + " ms");
        p.reconnectInitialMs = p.reconnectMaxMs;
    }
    if (auto v = f.integer("telemetry_queue", 1, 1000000))
        p.telemetryQueue = *v;
    f.reportUnknown();
}

void readGithub(Object::Ptr o, Report& r, GithubSection& g, std::optional<std::string>& tokenFile) {
    Fields f(o, "github", r);
    if (auto v = f.str("api_url")) {
        try {
            Poco::URI uri(*v);
            if (uri.getScheme() != "https" && uri.getScheme() != "http")
                r.error("github.api_url", "'" + *v + "' must start with https:// or http://");
            else if (uri.getHost().empty())
                r.error("github.api_url", "'" + *v + "' has no host");
            else {
                g.apiUrl = *v;
                while (g.apiUrl.size() > 1 && g.apiUrl.back() == '/')
                    g.apiUrl.pop_back();
            }
        } catch (const Poco::Exception& e) {
            r.error("github.api_url", "not a valid URL: " + e.displayText());
        }
    }
    tokenFile = f.path("token_file");
    g.caFile = f.path("ca_file");
    checkCaFile(g.caFile, "github.ca_file", r);
    if (auto v = f.integer("backoff_initial_s", 1, 86400))
        g.backoffInitialS = *v;
    if (auto v = f.integer("backoff_max_s", 1, 7 * 86400))
        g.backoffMaxS = *v;
    if (g.backoffMaxS < g.backoffInitialS) {
        // The contract's min(backoff_max_s, ...) caps every wait at backoff_max_s; lowering
        // the initial delay gives exactly that with a policy that keeps max >= initial.
        r.warning("github.backoff_max_s",
                  std::to_string(g.backoffMaxS) + " is smaller than github.backoff_initial_s (" +
                      std::to_string(g.backoffInitialS) + "): every retry waits " +
                      std::to_string(g.backoffMaxS) + " s");
        g.backoffInitialS = g.backoffMaxS;
    }
    if (auto v = f.integer("max_attempts", 1, 100))
        g.maxAttempts = *v;
    f.reportUnknown();
}

// One component object, from `components[i]` of the main file or from a drop-in file.
std::optional<ComponentConfig> readComponent(Object::Ptr o, const std::string& prefix,
                                             const std::string& origin, Report& r) {
    size_t before = r.errors.size();
    Fields f(o, prefix, r);
    ComponentConfig c;
    c.origin = origin;
    if (auto v = f.str("name", true)) {
        if (!std::regex_match(*v, componentNameRe()))
            r.error(join(prefix, "name"), "'" + *v + "' must match [a-z0-9][a-z0-9._-]{0,63}");
        else
            c.name = *v;
    }
    if (auto v = f.str("type", true)) {
        if (v->find('/') != std::string::npos || *v == "." || *v == "..")
            r.error(join(prefix, "type"), "'" + *v + "' is not a plugin name");
        else
            c.type = *v;
    }
    if (auto v = f.str("repo", true)) {
        const std::string owner = v->substr(0, v->find('/'));
        const std::string name = v->substr(v->find('/') + 1);
        auto dots = [](const std::string& s) { return s == "." || s == ".."; };
        if (!std::regex_match(*v, repoRe()))
            r.error(join(prefix, "repo"), "'" + *v + "' must be owner/name");
        else if (dots(owner) || dots(name))
            r.error(join(prefix, "repo"),
                    "'" + *v + "' must be owner/name; '.' and '..' are not names");
        else
            c.repo = *v;
    }
    if (auto v = f.str("asset", true)) {
        if (v->find('/') != std::string::npos)
            r.error(join(prefix, "asset"), "'" + *v + "' must be a file name (no '/')");
        else
            c.asset = *v;
    }
    if (auto v = f.boolean("allow_prerelease"))
        c.allowPrerelease = *v;
    if (auto v = f.integer("verify_timeout_s", 1, 86400))
        c.verifyTimeoutS = *v;
    if (auto v = f.str("pin")) {
        if (!parseSemVer(*v))
            r.error(join(prefix, "pin"),
                    "'" + *v +
                        "' is not a SemVer tag (like v1.4.2): a pin names one exact release, "
                        "and the agent must order it against the installed one");
        else
            c.pin = *v;
    }
    if (auto s = f.object("settings")) {
        std::ostringstream os;
        Poco::JSON::Stringifier::stringify(s, os);
        c.settingsJson = os.str();
    }
    f.reportUnknown();
    if (r.errors.size() != before)
        return std::nullopt;
    return c;
}

std::vector<std::string> listDropIns(const std::string& dir, Report& r, bool& missing) {
    std::vector<std::string> files;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        if (errno == ENOENT)
            missing = true;
        else
            r.error("agent.components_dir", "cannot read '" + dir + "': " + strerror(errno));
        return files;
    }
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0 && n[0] != '.')
            files.push_back(n);
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    return files;
}

std::string defaultHostname() {
    char buf[256] = {0};
    if (::gethostname(buf, sizeof buf - 1) != 0)
        return "raspi";
    return buf;
}

// Host names may hold characters agent_id may not; keep what the protocol allows.
std::string sanitizeId(const std::string& h) {
    std::string out;
    for (char c : h)
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')
            out += c;
    if (out.empty())
        out = "raspi";
    return out.substr(0, 64);
}

}  // namespace

LoadEnvironment LoadEnvironment::fromProcess(const std::string& binaryPath) {
    LoadEnvironment env;
    env.binaryPath = binaryPath;
    env.getenv = [](const std::string& k) -> std::optional<std::string> {
        const char* v = ::getenv(k.c_str());
        if (!v)
            return std::nullopt;
        return std::string(v);
    };
    env.hostname = defaultHostname;
    return env;
}

LoadResult loadConfig(const std::string& path, const LoadEnvironment& envIn) {
    LoadEnvironment env = envIn;
    if (!env.getenv)
        env.getenv = LoadEnvironment::fromProcess("").getenv;
    if (!env.hostname)
        env.hostname = defaultHostname;

    LoadResult res;
    Report r{res.errors, res.warnings, path};
    std::string why;
    auto text = readFile(path, why);
    if (!text) {
        r.error("", why);
        return res;
    }
    Object::Ptr root = parseObject(*text, r);
    if (!root)
        return res;

    Config cfg;
    cfg.path = path;
    Fields top(root, "", r);
    if (auto a = top.object("agent"))
        readAgent(a, r, cfg.agent);
    std::optional<std::string> proxyTokenFile, githubTokenFile;
    // The contract names proxy.url as the required key, so a missing section says that.
    if (!top.has("proxy"))
        r.error("proxy.url", kProxyUrlRequired);
    else if (auto p = top.object("proxy"))
        readProxy(p, r, cfg.proxy, proxyTokenFile);
    if (auto g = top.object("github"))
        readGithub(g, r, cfg.github, githubTokenFile);

    // Defaults that depend on the machine.
    if (cfg.agent.id.empty())
        cfg.agent.id = sanitizeId(env.hostname());
    if (cfg.agent.arch.empty())
        cfg.agent.arch = kAgentArch;
    if (cfg.agent.pluginDir.empty()) {
        std::string binDir = dirName(env.binaryPath.empty() ? "/usr/bin/x" : env.binaryPath);
        cfg.agent.pluginDir = dirName(binDir) + "/lib/raspi-release-agent/plugins";
    }
    if (cfg.agent.runtimeDir.empty()) {
        auto rd = env.getenv("RUNTIME_DIRECTORY");
        // systemd may list several directories separated by ':'; ours is the first.
        cfg.agent.runtimeDir =
            (rd && !rd->empty()) ? rd->substr(0, rd->find(':')) : "/run/raspi-release-agent";
    }

    resolveToken(proxyTokenFile, "proxy.token_file", "proxy-token", "RRA_PROXY_TOKEN", env, r,
                 cfg.proxy.token, cfg.proxy.tokenSource);
    resolveToken(githubTokenFile, "github.token_file", "github-token", "GITHUB_TOKEN", env, r,
                 cfg.github.token, cfg.github.tokenSource);
    if (!cfg.github.token.empty()) {
        try {
            Poco::URI api(cfg.github.apiUrl);
            std::string h = api.getHost();
            bool loopback = h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1";
            if (api.getScheme() == "http" && !loopback)
                r.warning("github.api_url",
                          "sends the GitHub token over plain HTTP to '" + h + "'; use https://");
        } catch (const Poco::Exception&) {
        }
    }

    // Components: the main file's array, then the drop-ins in name order.
    std::set<std::string> names;
    auto addComponent = [&](ComponentConfig c, Report& where, const std::string& key) {
        if (!names.insert(c.name).second) {
            const ComponentConfig* first = nullptr;
            for (const auto& x : cfg.components)
                if (x.name == c.name)
                    first = &x;
            where.error(key, "duplicate component name '" + c.name + "' (already defined in " +
                                 (first ? first->origin : std::string("?")) + ")");
            return;
        }
        cfg.components.push_back(std::move(c));
    };
    if (top.has("components")) {
        Var v = root->get("components");
        if (v.type() != typeid(Poco::JSON::Array::Ptr)) {
            r.error("components", "must be an array");
        } else {
            auto arr = v.extract<Poco::JSON::Array::Ptr>();
            for (size_t i = 0; i < arr->size(); ++i) {
                std::string key = "components[" + std::to_string(i) + "]";
                auto o = arr->getObject(static_cast<unsigned>(i));
                if (!o) {
                    r.error(key, "must be an object");
                    continue;
                }
                if (auto c = readComponent(o, key, path + ": " + key, r))
                    addComponent(std::move(*c), r, key + ".name");
            }
        }
    }
    top.reportUnknown();

    bool missingDir = false;
    auto files = listDropIns(cfg.agent.componentsDir, r, missingDir);
    for (const auto& name : files) {
        std::string file = cfg.agent.componentsDir + "/" + name;
        Report fr{res.errors, res.warnings, file};
        std::string whyFile;
        auto t = readFile(file, whyFile);
        if (!t) {
            fr.error("", whyFile);
            continue;
        }
        Object::Ptr o = parseObject(*t, fr);
        if (!o)
            continue;
        if (auto c = readComponent(o, "", file, fr))
            addComponent(std::move(*c), fr, "name");
    }

    if (res.errors.empty())
        res.config = std::move(cfg);
    return res;
}

std::string ConfigDiff::describe() const {
    std::ostringstream os;
    auto list = [&](const char* what, const std::vector<std::string>& v) {
        if (v.empty())
            return;
        os << (os.tellp() > 0 ? "; " : "") << what << ": ";
        for (size_t i = 0; i < v.size(); ++i)
            os << (i ? ", " : "") << v[i];
    };
    list("added", added);
    list("removed", removed);
    list("changed", changed);
    auto flag = [&](bool b, const char* what) {
        if (b)
            os << (os.tellp() > 0 ? "; " : "") << what;
    };
    flag(agentChanged, "agent settings changed");
    flag(proxyChanged, "proxy settings changed");
    flag(githubChanged, "github settings changed");
    std::string s = os.str();
    return s.empty() ? "no changes" : s;
}

ConfigDiff diffConfigs(const Config& a, const Config& b) {
    ConfigDiff d;
    for (const auto& c : b.components) {
        const ComponentConfig* old = a.find(c.name);
        if (!old) {
            d.added.push_back(c.name);
            d.inventoryNeeded = true;
        } else if (*old != c) {
            d.changed.push_back(c.name);
            if (old->repo != c.repo || old->type != c.type)
                d.inventoryNeeded = true;
        }
    }
    for (const auto& c : a.components)
        if (!b.find(c.name)) {
            d.removed.push_back(c.name);
            d.inventoryNeeded = true;
        }
    const auto& p = a.proxy;
    const auto& q = b.proxy;
    d.proxyChanged = p.url != q.url || p.token != q.token || p.caFile != q.caFile ||
                     p.heartbeatS != q.heartbeatS || p.reconnectInitialMs != q.reconnectInitialMs ||
                     p.reconnectMaxMs != q.reconnectMaxMs || p.telemetryQueue != q.telemetryQueue;
    const auto& g = a.github;
    const auto& h = b.github;
    d.githubChanged = g.apiUrl != h.apiUrl || g.token != h.token || g.caFile != h.caFile ||
                      g.backoffInitialS != h.backoffInitialS || g.backoffMaxS != h.backoffMaxS ||
                      g.maxAttempts != h.maxAttempts;
    const auto& x = a.agent;
    const auto& y = b.agent;
    d.agentChanged = x.id != y.id || x.arch != y.arch || x.pluginDir != y.pluginDir ||
                     x.workDir != y.workDir || x.componentsDir != y.componentsDir ||
                     x.runtimeDir != y.runtimeDir ||
                     x.maxParallelDownloads != y.maxParallelDownloads || x.logLevel != y.logLevel ||
                     x.applyJitterS != y.applyJitterS;
    if (x.id != y.id || x.arch != y.arch)
        d.inventoryNeeded = true;
    return d;
}

}  // namespace rra::config
