// `fake-proxy`: the fake proxy as a program for shell demos and daemon integration tests.
//
//   fake-proxy [--port N] [--tls CERT KEY] [--no-ack]
//
// Prints the listening port as the first stdout line, then every text message received
// from an agent as one line (the JSON as received). Reads commands from stdin, one a line:
//   sync <component> <repo> <tag>...   replace the scripted sync entries of <component>
//   sync-clear                         no entries in the scripted sync
//   resync                             push the scripted sync to open connections now
//   release <component> <repo> <tag>  push a release message
//   raw <text>                         push a text frame as is
//   binary <text>                      push a binary frame
//   ack on|off                         acknowledge telemetry automatically (default on)
//   refuse <status>                    answer upgrades with <status> (0: accept again)
//   close <code>                       close open connections with <code>
//   drop                               drop open connections without a close frame
//   stop | start                       stop listening (dropping connections) / listen again
//   quit                               exit (also on end of input)
// Diagnostics ("ok", "error: ...") go to stderr so stdout stays machine-readable.
#include "fakes/proxy/fake_proxy.hpp"

#include <Poco/Net/NetException.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <sstream>

namespace {

std::mutex outMutex;

void printLine(const std::string& text) {
    std::string line = text;
    std::replace(line.begin(), line.end(), '\n', ' ');
    std::lock_guard<std::mutex> lk(outMutex);
    std::cout << line << std::endl;
}

int usage() {
    std::cerr << "usage: fake-proxy [--port N] [--tls CERT KEY] [--no-ack]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    using rra::Announcement;
    using rra::fakes::FakeProxy;
    FakeProxy::Options opt;
    bool ack = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--port" && i + 1 < argc) {
            opt.port = static_cast<uint16_t>(std::stoi(argv[++i]));
        } else if (a == "--tls" && i + 2 < argc) {
            opt.certFile = argv[++i];
            opt.keyFile = argv[++i];
        } else if (a == "--no-ack") {
            ack = false;
        } else {
            return usage();
        }
    }
    try {
        FakeProxy fake(opt);
        fake.setAutoAck(ack);
        fake.setOnText(printLine);
        fake.start();
        printLine(std::to_string(fake.port()));

        std::vector<Announcement> sync;
        std::string line;
        while (std::getline(std::cin, line)) {
            std::istringstream in(line);
            std::string cmd;
            in >> cmd;
            bool ok = true;
            if (cmd.empty()) {
                continue;
            } else if (cmd == "sync") {
                std::string component, repo, tag;
                in >> component >> repo;
                if (component.empty() || repo.empty()) {
                    std::cerr << "error: sync <component> <repo> <tag>...\n";
                    continue;
                }
                sync.erase(
                    std::remove_if(sync.begin(), sync.end(),
                                   [&](const Announcement& x) { return x.component == component; }),
                    sync.end());
                while (in >> tag)
                    sync.push_back({component, repo, tag, ""});
                fake.setSync(sync);
            } else if (cmd == "sync-clear") {
                sync.clear();
                fake.setSync(sync);
            } else if (cmd == "resync") {
                ok = fake.pushSync();
            } else if (cmd == "release") {
                Announcement a;
                in >> a.component >> a.repo >> a.tag;
                if (a.tag.empty()) {
                    std::cerr << "error: release <component> <repo> <tag>\n";
                    continue;
                }
                ok = fake.pushRelease(a);
            } else if (cmd == "raw" || cmd == "binary") {
                std::string rest;
                std::getline(in >> std::ws, rest);
                ok = cmd == "raw" ? fake.pushRaw(rest) : fake.pushBinary(rest);
            } else if (cmd == "ack") {
                std::string v;
                in >> v;
                fake.setAutoAck(v != "off");
            } else if (cmd == "refuse") {
                int status = 0;
                in >> status;
                fake.setRefuseStatus(status);
            } else if (cmd == "close") {
                int code = 1000;
                in >> code;
                ok = fake.closeConnections(static_cast<uint16_t>(code));
            } else if (cmd == "drop") {
                ok = fake.dropConnections();
            } else if (cmd == "stop") {
                fake.stop();
            } else if (cmd == "start") {
                fake.start();
            } else if (cmd == "quit") {
                break;
            } else {
                std::cerr << "error: unknown command '" << cmd << "'\n";
                continue;
            }
            std::cerr << (ok ? "ok\n" : "ok (no open connection)\n");
        }
        fake.stop();
    } catch (const Poco::Exception& e) {
        std::cerr << "fake-proxy: " << e.displayText() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "fake-proxy: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
