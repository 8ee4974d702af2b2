// Finds and loads deployer plugins (*.so) from agent.plugin_dir. The only file of the
// agent that includes <dlfcn.h> is plugin_loader.cpp.
#pragma once

#include "common/error.hpp"

#include <raspi_release/deployer.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rra::plugins {

// One loaded shared object and its validated table. Instances keep it alive.
class LoadedPlugin {
  public:
    LoadedPlugin(std::string path, void* handle, const rra_deployer* table);
    ~LoadedPlugin();
    LoadedPlugin(const LoadedPlugin&) = delete;
    LoadedPlugin& operator=(const LoadedPlugin&) = delete;

    const std::string& path() const { return path_; }
    const std::string& name() const { return name_; }
    const rra_deployer& table() const { return *table_; }
    // Whether the plugin's table is long enough to hold `offset` (a later-minor field).
    bool hasField(size_t offsetEnd) const { return table_->struct_size >= offsetEnd; }

  private:
    std::string path_;
    std::string name_;
    void* handle_;  // dlopen handle; nullptr for in-process tables (tests)
    const rra_deployer* table_;
};

// Validates a table returned by an entry point (ABI major, size, name, required hooks).
// `where` names the file for error messages. Used by the loader and by tests that hand
// in-process tables.
Expected<std::shared_ptr<LoadedPlugin>> adoptTable(const std::string& where, void* handle,
                                                   const rra_deployer* table);

// Writes a plugin's log line at the level it asked for.
void logAtLevel(rra_log_level level, const std::string& message);

// The host services passed to every plugin's entry point.
const rra_host_services* hostServices();

struct LoadReport {
    std::map<std::string, std::shared_ptr<LoadedPlugin>> byName;  // deployer name -> plugin
    std::vector<Error> errors;  // one per plugin that was refused (it is skipped)
};

// Loads one file. Refuses: group/other-writable file or directory, missing entry symbol,
// NULL table, ABI major mismatch, short table, missing required hooks.
Expected<std::shared_ptr<LoadedPlugin>> loadPlugin(const std::string& path);

// Loads every *.so in `dir` in name order. A missing directory is an error in `errors`;
// a duplicate deployer name keeps the first and reports the second.
LoadReport loadPluginDir(const std::string& dir);

}  // namespace rra::plugins
