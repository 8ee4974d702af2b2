// "hello": the smallest useful deployer. It copies the release asset to
// <target_dir>/<tag>.bin and points <target_dir>/current at it; discovery reads the link.
// Settings: {"target_dir": "/var/lib/hello"} (required).
#include <raspi_release/deployer.hpp>

#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

// Reads one string setting without a JSON library: good enough for a flat object.
bool readString(const std::string& json, const std::string& key, std::string& out) {
    auto k = json.find("\"" + key + "\"");
    if (k == std::string::npos)
        return false;
    auto q1 = json.find('"', json.find(':', k) + 1);
    auto q2 = json.find('"', q1 + 1);
    if (q1 == std::string::npos || q2 == std::string::npos)
        return false;
    out = json.substr(q1 + 1, q2 - q1 - 1);
    return true;
}

class Hello : public rra::sdk::Deployer {
  public:
    Hello(std::string dir, rra::sdk::Host host) : dir_(std::move(dir)), host_(host) {}

    static rra::sdk::Result create(const rra::sdk::Config& cfg, rra::sdk::Host host,
                                   std::unique_ptr<rra::sdk::Deployer>& out) {
        std::string dir;
        if (!readString(cfg.settingsJson, "target_dir", dir) || dir.empty())
            return rra::sdk::Result::invalidSettings("settings.target_dir: required");
        out = std::make_unique<Hello>(dir, host);
        return rra::sdk::Result::ok();
    }

    rra::sdk::Result discover(rra::sdk::Discovery& d) override {
        char buf[4096];
        ssize_t n = readlink((dir_ + "/current").c_str(), buf, sizeof buf - 1);
        if (n > 0) {
            std::string target(buf, static_cast<size_t>(n));  // "<tag>.bin"
            d.tag = target.substr(0, target.size() - 4);
        }
        return rra::sdk::Result::ok();
    }

    rra::sdk::Result install(const rra::sdk::InstallRequest& r) override {
        std::ifstream in(r.artifactPath, std::ios::binary);
        std::ofstream out(dir_ + "/" + r.tag + ".bin", std::ios::binary | std::ios::trunc);
        if (!in || !out)
            return rra::sdk::Result::refused("cannot copy the asset into " + dir_);
        out << in.rdbuf();
        out.close();
        return point(r.tag);
    }

    rra::sdk::Result verify(const std::string& tag, uint32_t) override {
        std::ifstream f(dir_ + "/" + tag + ".bin");
        return f ? rra::sdk::Result::ok() : rra::sdk::Result::error(tag + ".bin is missing");
    }

    rra::sdk::Result rollback(const std::optional<std::string>& to,
                              const std::string& failed) override {
        std::remove((dir_ + "/" + failed + ".bin").c_str());
        if (!to) {
            std::remove((dir_ + "/current").c_str());
            return rra::sdk::Result::ok();
        }
        return point(*to);
    }

  private:
    // Atomic switch: a new link renamed over the old one.
    rra::sdk::Result point(const std::string& tag) {
        auto section = host_.critical();
        std::string tmp = dir_ + "/.current.new";
        std::remove(tmp.c_str());
        if (symlink((tag + ".bin").c_str(), tmp.c_str()) != 0 ||
            rename(tmp.c_str(), (dir_ + "/current").c_str()) != 0)
            return rra::sdk::Result::error(std::string("switching current: ") + strerror(errno));
        host_.info("current is now " + tag);
        return rra::sdk::Result::ok();
    }

    std::string dir_;
    rra::sdk::Host host_;
};

}  // namespace

RRA_DEFINE_DEPLOYER(Hello, "hello", "copies the asset into target_dir", "1.0.0")
