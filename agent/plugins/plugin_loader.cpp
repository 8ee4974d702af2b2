#include "plugins/plugin_loader.hpp"

#include "common/version.hpp"

#include <Poco/Logger.h>

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace rra::plugins {
namespace {

// The smallest table a plugin of this major version may return: every field of 1.0.
constexpr size_t kMinTableSize = offsetof(rra_deployer, confirm) + sizeof(void*);

void hostLog(rra_log_level level, const char* message) {
    logAtLevel(level, message ? message : "");
}

std::string modeText(mode_t m) {
    char buf[8];
    snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

// Plugins run as the agent (root): a file or directory others can write is a way in.
Status checkNotWritableByOthers(const std::string& path, const char* what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return fail(ErrorCode::kIo, std::string(what) + " '" + path + "': " + strerror(errno));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fail(ErrorCode::kPermission, std::string(what) + " '" + path + "' has mode " +
                                                modeText(st.st_mode) +
                                                ": writable by group or others, refused");
    return {};
}

std::string dirOf(const std::string& p) {
    size_t s = p.find_last_of('/');
    if (s == std::string::npos)
        return ".";
    return s == 0 ? "/" : p.substr(0, s);
}

}  // namespace

LoadedPlugin::LoadedPlugin(std::string path, void* handle, const rra_deployer* table)
    : path_(std::move(path)), name_(table->name), handle_(handle), table_(table) {}

LoadedPlugin::~LoadedPlugin() {
    // Instances and abandoned hook threads hold shared_ptrs, so by now no code of the
    // library runs.
    if (handle_)
        ::dlclose(handle_);
}

void logAtLevel(rra_log_level level, const std::string& m) {
    auto& log = Poco::Logger::get("plugins");
    switch (level) {
        case RRA_LOG_ERROR:
            log.error(m);
            break;
        case RRA_LOG_WARNING:
            log.warning(m);
            break;
        case RRA_LOG_NOTICE:
            log.notice(m);
            break;
        case RRA_LOG_INFO:
            log.information(m);
            break;
        default:
            log.debug(m);
            break;
    }
}

const rra_host_services* hostServices() {
    static const rra_host_services services = {
        sizeof(rra_host_services), RRA_ABI_MAJOR, RRA_ABI_MINOR, kAgentVersion, &hostLog,
    };
    return &services;
}

Expected<std::shared_ptr<LoadedPlugin>> adoptTable(const std::string& where, void* handle,
                                                   const rra_deployer* t) {
    auto refuse = [&](const std::string& why) -> Expected<std::shared_ptr<LoadedPlugin>> {
        if (handle)
            ::dlclose(handle);
        return fail(ErrorCode::kUnsupported, "plugin '" + where + "': " + why);
    };
    if (!t)
        return refuse(std::string("entry point ") + RRA_PLUGIN_ENTRY_SYMBOL +
                      " returned no table (the plugin refused this agent)");
    if (t->struct_size < offsetof(rra_deployer, name) + sizeof(void*))
        return refuse("table too short to read its version (" + std::to_string(t->struct_size) +
                      " bytes)");
    if (t->abi_major != RRA_ABI_MAJOR)
        return refuse("ABI version " + std::to_string(t->abi_major) + "." +
                      std::to_string(t->abi_minor) + " (symbol " + RRA_PLUGIN_ENTRY_SYMBOL +
                      "), agent supports " + std::to_string(RRA_ABI_MAJOR) + "." +
                      std::to_string(RRA_ABI_MINOR));
    if (t->struct_size < kMinTableSize)
        return refuse("short table: " + std::to_string(t->struct_size) + " bytes, ABI " +
                      std::to_string(RRA_ABI_MAJOR) + ".0 needs at least " +
                      std::to_string(kMinTableSize) + " (plugin says ABI " +
                      std::to_string(t->abi_major) + "." + std::to_string(t->abi_minor) + ")");
    if (!t->name || !*t->name)
        return refuse("table has no deployer name");
    if (std::strchr(t->name, '/'))
        return refuse("deployer name contains '/'");
    if (!t->create || !t->destroy || !t->discover || !t->install)
        return refuse(std::string("deployer '") + t->name +
                      "' lacks a required hook (create, destroy, discover and install are "
                      "required)");
    return std::make_shared<LoadedPlugin>(where, handle, t);
}

Expected<std::shared_ptr<LoadedPlugin>> loadPlugin(const std::string& path) {
    if (auto s = checkNotWritableByOthers(dirOf(path), "plugin directory"); !s)
        return fail(s.error().context("plugin '" + path + "'"));
    if (auto s = checkNotWritableByOthers(path, "plugin file"); !s)
        return fail(s.error());

    ::dlerror();
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* e = ::dlerror();
        return fail(ErrorCode::kIo, "plugin '" + path + "': cannot load: " + (e ? e : "?"));
    }
    ::dlerror();
    void* sym = ::dlsym(handle, RRA_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        const char* e = ::dlerror();
        std::string why = e ? e : "symbol is NULL";
        ::dlclose(handle);
        return fail(ErrorCode::kUnsupported, "plugin '" + path + "': no entry symbol " +
                                                 RRA_PLUGIN_ENTRY_SYMBOL + " (" + why + ")");
    }
    auto entry = reinterpret_cast<rra_plugin_entry_fn>(sym);
    const rra_deployer* table = entry(hostServices());
    return adoptTable(path, handle, table);
}

LoadReport loadPluginDir(const std::string& dir) {
    LoadReport report;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        report.errors.emplace_back(ErrorCode::kIo,
                                   "plugin directory '" + dir + "': " + strerror(errno));
        return report;
    }
    std::vector<std::string> files;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0)
            files.push_back(n);
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    if (auto s = checkNotWritableByOthers(dir, "plugin directory"); !s) {
        report.errors.push_back(s.error().context("every plugin refused"));
        return report;
    }
    for (const auto& f : files) {
        std::string path = dir + "/" + f;
        auto p = loadPlugin(path);
        if (!p) {
            report.errors.push_back(p.error());
            continue;
        }
        const std::string& name = (*p)->name();
        auto it = report.byName.find(name);
        if (it != report.byName.end()) {
            report.errors.emplace_back(ErrorCode::kConfig, "plugin '" + path +
                                                               "': duplicate deployer name '" +
                                                               name + "' (already provided by '" +
                                                               it->second->path() + "'), skipped");
            continue;
        }
        report.byName.emplace(name, *p);
    }
    return report;
}

}  // namespace rra::plugins
