// Real-podman test environment for the container deployer: a CONTAINERS_CONF that works on
// this kind of machine (runc, explicit ulimits), tiny busybox images saved as
// docker-archive assets, unique names per run and cleanup of everything created.
#pragma once

#include "support/test_support.hpp"

#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace rra::test {

// Absolute path of `program` in PATH, or "" when absent.
inline std::string findInPath(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos)
            end = dirs.size();
        std::string candidate = dirs.substr(start, end - start) + "/" + program;
        if (end > start && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return {};
}

inline std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

// What each test image does; all share one busybox root.
struct ImageSpec {
    std::string version;       // written to /VERSION
    bool healthy = true;       // /bin/health exits 0 (else 1, printing "unhealthy")
    bool exitsAtOnce = false;  // the command prints "boom" and exits 3
};

class PodmanEnv {
  public:
    PodmanEnv() {
        podman_ = findInPath("podman");
        if (podman_.empty())
            throw std::runtime_error(
                "podman is not installed: the container deployer tests need real podman "
                "(apt-get install podman runc busybox-static)");
        if (::access("/bin/busybox", X_OK) != 0)
            throw std::runtime_error("/bin/busybox missing (apt-get install busybox-static)");
        conf_ = dir_.str("containers.conf");
        writeFile(conf_,
                  "[containers]\ndefault_ulimits = [\"nofile=1024:1024\",\"nproc=1024:1024\"]\n"
                  "[engine]\nruntime = \"runc\"\n");
        // The plugin passes its environment to podman: the test process carries the conf.
        ::setenv("CONTAINERS_CONF", conf_.c_str(), 1);
        auto info = podman({"info", "--format", "{{.Host.OCIRuntime.Name}}"});
        if (info.code != 0)
            throw std::runtime_error("podman cannot run here (podman info failed): " + info.err);
        std::random_device rd;
        suffix_ = std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
        container_ = "rra-test-" + suffix_;
        image_ = "localhost/rra-test-" + suffix_;
        buildImage("v1", {"v1"});
        buildImage("v2", {"v2"});
        buildImage("v3", {"v3", false});
        buildImage("crash", {"crash", true, true});
        writeFile(asset("junk"), "this is not an image archive\n");
        // The run must be able to start a container at all, or every test would fail for
        // the same reason: say so once, clearly.
        auto probe = podman({"run", "--rm", buildRef("v1"), "/bin/true"});
        if (probe.code != 0)
            throw std::runtime_error("podman cannot run containers here: " + probe.err);
        // Installs must really load the archives: drop the build names.
        for (const auto& n : built_)
            podman({"rmi", "-f", buildRef(n)});
    }
    ~PodmanEnv() {
        for (const auto& name : extraContainers_)
            podman({"rm", "-f", "-t", "0", name});
        podman({"rm", "-f", "-t", "0", container_});
        podman({"rm", "-f", "-t", "0", container_ + "-rra-next"});
        for (const auto& tag : imageTags())
            podman({"rmi", "-f", image_ + ":" + tag});
        for (const auto& n : built_)
            podman({"rmi", "-f", buildRef(n)});
    }
    PodmanEnv(const PodmanEnv&) = delete;
    PodmanEnv& operator=(const PodmanEnv&) = delete;

    RunResult podman(std::vector<std::string> args) const {
        args.insert(args.begin(), podman_);
        return run(args, dir_.str(), {{"CONTAINERS_CONF", conf_}}, std::chrono::seconds(60));
    }
    // `podman container inspect --format F` of the managed container; "" when missing.
    std::string inspect(const std::string& format, const std::string& name = "") const {
        auto r =
            podman({"container", "inspect", "--format", format, name.empty() ? container_ : name});
        return r.code == 0 ? trimmed(r.out) : std::string();
    }
    std::string status() const { return inspect("{{.State.Status}}"); }
    std::string tagLabel() const {
        return inspect("{{index .Config.Labels \"io.raspi-release.tag\"}}");
    }
    std::string containerId() const { return inspect("{{.Id}}"); }
    // /VERSION inside the running container.
    std::string runningVersion() const {
        auto r = podman({"exec", container_, "cat", "/VERSION"});
        return r.code == 0 ? trimmed(r.out) : std::string();
    }
    // Tags of the managed image repository, sorted.
    std::vector<std::string> imageTags() const {
        auto r = podman({"images", "--format", "{{.Repository}}|{{.Tag}}"});
        std::vector<std::string> tags;
        std::istringstream in(r.out);
        std::string line;
        const std::string prefix = image_ + "|";
        while (std::getline(in, line)) {
            if (line.rfind(prefix, 0) == 0)
                tags.push_back(line.substr(prefix.size()));
        }
        std::sort(tags.begin(), tags.end());
        return tags;
    }
    void forgetContainerLater(const std::string& name) { extraContainers_.push_back(name); }

    std::string asset(const std::string& name) const { return dir_.str(name + ".tar"); }
    const std::string& container() const { return container_; }
    const std::string& image() const { return image_; }
    const std::string& podmanPath() const { return podman_; }
    const std::string& confPath() const { return conf_; }
    std::string buildRef(const std::string& name) const {
        return "localhost/rra-build-" + suffix_ + ":" + name;
    }

  private:
    void buildImage(const std::string& name, const ImageSpec& spec) {
        const std::string root = dir_.str("root-" + name);
        fs::create_directories(root + "/bin");
        fs::create_directories(root + "/tmp");
        fs::copy_file("/bin/busybox", root + "/bin/busybox");
        for (const char* applet : {"sh", "sleep", "cat", "echo", "true", "false", "test"})
            fs::create_symlink("busybox", root + "/bin/" + applet);
        writeFile(root + "/VERSION", spec.version + "\n");
        writeFile(root + "/bin/health",
                  spec.healthy ? "#!/bin/sh\ncat /VERSION\n"
                               : "#!/bin/sh\necho unhealthy " + spec.version + "\nexit 1\n",
                  0755);
        // `sleep & wait` lets the TERM trap run at once, so a stop does not hit the timeout.
        writeFile(root + "/bin/serve",
                  spec.exitsAtOnce
                      ? "#!/bin/sh\necho boom: cannot start " + spec.version + "\nexit 3\n"
                      : "#!/bin/sh\necho serving " + spec.version +
                            "\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n",
                  0755);
        const std::string tarball = dir_.str("root-" + name + ".tar");
        auto t = run({findInPath("tar"), "-C", root, "-cf", tarball, "."}, dir_.str());
        if (t.code != 0)
            throw std::runtime_error("tar of the test root failed: " + t.err);
        auto imp = podman({"import", "--change", "CMD [\"/bin/serve\"]", tarball, buildRef(name)});
        if (imp.code != 0)
            throw std::runtime_error("podman import failed: " + imp.err);
        built_.push_back(name);
        auto save =
            podman({"save", "--format", "docker-archive", "-o", asset(name), buildRef(name)});
        if (save.code != 0)
            throw std::runtime_error("podman save failed: " + save.err);
        // The same image as an OCI archive, the other format `load` accepts.
        auto oci =
            podman({"save", "--format", "oci-archive", "-o", asset(name + "-oci"), buildRef(name)});
        if (oci.code != 0)
            throw std::runtime_error("podman save (oci-archive) failed: " + oci.err);
    }

    TempDir dir_;
    std::string podman_, conf_, suffix_, container_, image_;
    std::vector<std::string> built_;
    std::vector<std::string> extraContainers_;
};

}  // namespace rra::test
