// bench_extract: the tarball deployer installing a large tar.gz (a few thousand files) vs
// `tar -xzf` of the same file followed by `sync -f` (the deployer syncs; tar alone does
// not), side by side, medians of several runs.
//   bench_extract [--size-mib 256] [--files 3000] [--runs 3] [--dir /var/tmp]
#include "plugin_support/archive_builder.hpp"
#include "plugin_support/plugin_harness.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

using namespace rra::test;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Files of mixed compressibility (half random, half text-like), `total` bytes overall.
void buildArchive(const std::string& path, uint64_t total, int files) {
    std::mt19937_64 rng(42);
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    archive_write_open_filename(a, path.c_str());
    const uint64_t per = total / static_cast<uint64_t>(files);
    std::vector<char> buf(per);
    for (int i = 0; i < files; ++i) {
        if (i % 2 == 0) {
            for (size_t j = 0; j + 8 <= buf.size(); j += 8) {
                uint64_t r = rng();
                std::memcpy(&buf[j], &r, 8);
            }
        } else {
            for (size_t j = 0; j < buf.size(); ++j)
                buf[j] = static_cast<char>('a' + (j * 7 + static_cast<size_t>(i)) % 26);
        }
        archive_entry* e = archive_entry_new();
        const std::string name = "pkg/dir" + std::to_string(i / 100) + "/file" + std::to_string(i);
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, static_cast<la_int64_t>(buf.size()));
        archive_write_header(a, e);
        archive_write_data(a, buf.data(), buf.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

// The deployer's install of one archive into installDir (state in installDir/.state).
int installOnce(const std::string& archivePath, const std::string& installDir,
                const std::string& tag) {
    const std::string state = installDir + "/.state";
    std::filesystem::create_directories(state);
    PluginLibrary lib(RRA_PLUGIN_DIR "/tarball.so");
    TestHost host;
    PluginInstance p(lib.table(), host, "{\"install_dir\":\"" + installDir + "\"}", state);
    if (!p.created.ok()) {
        std::cerr << "deployer create failed: " << p.created.message << std::endl;
        return 1;
    }
    const auto start = Clock::now();
    auto c = p.install(tag, archivePath);
    const double s = seconds(Clock::now() - start);
    if (!c.ok()) {
        std::cerr << "deployer install failed: " << c.message << std::endl;
        return 1;
    }
    std::printf("%.3f\n", s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t sizeMiB = 256;
    int files = 3000;
    int runs = 3;
    std::string base = "/var/tmp";
    std::string installArchive, installDir, installTag = "v1";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--install")
            installArchive = argv[i + 1];
        if (k == "--install-dir")
            installDir = argv[i + 1];
        if (k == "--tag")
            installTag = argv[i + 1];
        if (k == "--size-mib")
            sizeMiB = std::stoull(argv[i + 1]);
        if (k == "--files")
            files = std::stoi(argv[i + 1]);
        if (k == "--runs")
            runs = std::stoi(argv[i + 1]);
        if (k == "--dir")
            base = argv[i + 1];
    }
    if (!installArchive.empty() || !installDir.empty()) {
        if (installArchive.empty() || installDir.empty()) {
            std::cerr << "usage: bench_extract --install ARCHIVE --install-dir DIR [--tag v1]\n";
            return 64;
        }
        return installOnce(installArchive, installDir, installTag);
    }
    std::string tmpl = base + "/rra-bench-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
        std::perror("mkdtemp");
        return 1;
    }
    const std::string work = tmpl;
    const std::string archivePath = work + "/release.tar.gz";
    std::cout << "building " << sizeMiB << " MiB tar.gz with " << files << " files in " << work
              << " ..." << std::endl;
    buildArchive(archivePath, sizeMiB << 20, files);
    std::cout << "archive: " << std::filesystem::file_size(archivePath) / (1 << 20)
              << " MiB compressed" << std::endl;

    PluginLibrary lib(RRA_PLUGIN_DIR "/tarball.so");
    std::vector<double> deployer, tar;
    for (int run = 0; run < runs; ++run) {
        const std::string installDir = work + "/app" + std::to_string(run);
        const std::string tarDir = work + "/tar" + std::to_string(run);
        std::filesystem::create_directories(tarDir);
        std::system("sync");
        // Alternate the order so neither side always runs on a warmer cache.
        for (int side = 0; side < 2; ++side) {
            if ((side + run) % 2 == 0) {
                TestHost host;
                PluginInstance p(lib.table(), host, "{\"install_dir\":\"" + installDir + "\"}",
                                 work);
                const auto start = Clock::now();
                auto c = p.install("v1", archivePath);
                deployer.push_back(seconds(Clock::now() - start));
                if (!c.ok()) {
                    std::cerr << "deployer install failed: " << c.message << std::endl;
                    return 1;
                }
            } else {
                const auto start = Clock::now();
                int rc = std::system(
                    ("tar -xzf " + archivePath + " -C " + tarDir + " && sync -f " + tarDir)
                        .c_str());
                tar.push_back(seconds(Clock::now() - start));
                if (rc != 0) {
                    std::cerr << "tar failed" << std::endl;
                    return 1;
                }
            }
        }
        std::printf("run %d: deployer %.2f s   tar -xzf + sync -f %.2f s\n", run + 1,
                    deployer.back(), tar.back());
        std::filesystem::remove_all(installDir);
        std::filesystem::remove_all(tarDir);
    }
    const double d = median(deployer), t = median(tar);
    std::printf("\n%-28s %10s\n", "median of runs", "seconds");
    std::printf("%-28s %10.2f\n", "tarball deployer install", d);
    std::printf("%-28s %10.2f\n", "tar -xzf + sync -f", t);
    std::printf("ratio deployer/tar: %.2fx (target <= 1.15x: %s)\n", d / t,
                d / t <= 1.15 ? "met" : "NOT met");
    std::printf("RESULT\textract %llu MiB tar.gz (%d files)\t%.2f\ts\t%.2f\t%.2f\t<= 1.15x\t%s\n",
                static_cast<unsigned long long>(sizeMiB), files, d, t, d / t,
                d / t <= 1.15 ? "yes" : "no");
    std::filesystem::remove_all(work);
    return 0;
}
