// Fuzz target: config loading and validation (loadConfig on a temp file) and the JSON
// syntax locator. Properties: no crash or escaping exception; a syntax error points inside
// the text; an accepted config is well-formed JSON, has unique, non-empty component names
// and diffs empty against itself; a refused one names at least one problem.
#include "config/config_loader.hpp"
#include "config/json_syntax.hpp"
#include "fuzz_check.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

namespace {

struct Scratch {
    std::string dir;
    std::string file;
    Scratch() {
        char tmpl[] = "/tmp/rra-fuzz-config.XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        RRA_FUZZ_CHECK(d != nullptr, "scratch directory");
        dir = d;
        file = dir + "/agent.json";
    }
    ~Scratch() {
        ::unlink(file.c_str());
        ::rmdir(dir.c_str());
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Scratch scratch;
    const std::string text(reinterpret_cast<const char*>(data), size);

    if (auto e = rra::config::findJsonSyntaxError(text)) {
        const auto lines = std::count(text.begin(), text.end(), '\n') + 1;
        RRA_FUZZ_CHECK(e->line >= 1 && e->line <= lines, "syntax error line inside the text");
        RRA_FUZZ_CHECK(e->column >= 1, "syntax error column is 1-based");
        RRA_FUZZ_CHECK(!e->message.empty(), "syntax error says what");
    }

    {
        std::ofstream out(scratch.file, std::ios::binary | std::ios::trunc);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
    }
    rra::config::LoadEnvironment env;
    env.binaryPath = "/usr/bin/raspi-release-agent";
    env.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "GITHUB_TOKEN" || name == "RRA_PROXY_TOKEN")
            return std::string("fuzz-token");
        return std::nullopt;
    };
    env.hostname = [] { return std::string("fuzz-host"); };
    auto r = rra::config::loadConfig(scratch.file, env);
    if (!r.ok()) {
        RRA_FUZZ_CHECK(!r.errors.empty(), "a refused config names a problem");
        return 0;
    }
    RRA_FUZZ_CHECK(!rra::config::findJsonSyntaxError(text), "an accepted config is JSON");
    std::set<std::string> names;
    for (const auto& c : r.config->components) {
        RRA_FUZZ_CHECK(!c.name.empty() && !c.repo.empty() && !c.type.empty(),
                       "components have a name, a repo and a type");
        RRA_FUZZ_CHECK(names.insert(c.name).second, "component names are unique");
    }
    RRA_FUZZ_CHECK(rra::config::diffConfigs(*r.config, *r.config).empty(),
                   "a config diffs empty against itself");
    return 0;
}
