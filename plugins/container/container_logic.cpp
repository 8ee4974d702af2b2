// Pure decisions of the container deployer (see container_logic.hpp).
#include "container/container_logic.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace rra::container {

namespace {

bool isAlnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

std::string trim(const std::string& s) {
    size_t b = 0;
    size_t e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return s.substr(b, e - b);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        out.push_back(line);
    }
    return out;
}

// Lines the runtime printed with our marker, marker removed.
std::vector<std::string> markedLines(const std::string& output) {
    std::vector<std::string> out;
    const std::string marker = kMarker;
    for (const auto& l : lines(output)) {
        if (l.rfind(marker, 0) == 0)
            out.push_back(l.substr(marker.size()));
    }
    return out;
}

// Go templates print "<no value>" for a missing map key on some runtimes.
std::string labelValue(const std::string& v) {
    return v == "<no value>" ? std::string() : v;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

bool validContainerName(const std::string& name) {
    if (name.empty() || name.size() > 253 || !isAlnum(name[0]))
        return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return isAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::string imageNameProblem(const std::string& image) {
    if (image.empty())
        return "must not be empty";
    if (image.size() > 255)
        return "is longer than 255 characters";
    for (char c : image) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || c == '/' || c == ':';
        if (!ok)
            return std::string("must be a lowercase repository name ([a-z0-9._/:-]), found '") + c +
                   "'";
    }
    if (!isAlnum(image.front()) || !isAlnum(image.back()))
        return "must start and end with a letter or digit";
    size_t slash = image.rfind('/');
    if (image.find(':', slash == std::string::npos ? 0 : slash) != std::string::npos)
        return "must not carry a tag (the plugin tags images with the release tag)";
    return {};
}

std::string imageTagFor(const std::string& releaseTag) {
    std::string out;
    for (char c : releaseTag)
        out += (isAlnum(c) || c == '_' || c == '.' || c == '-') ? c : '_';
    if (out.empty() || out[0] == '.' || out[0] == '-')
        out = "_" + out;
    if (out.size() > 128)
        out.resize(128);
    return out;
}

bool runArgsChooseRestart(const std::vector<std::string>& runArgs) {
    return std::any_of(runArgs.begin(), runArgs.end(), [](const std::string& a) {
        return a == "--restart" || a.rfind("--restart=", 0) == 0 || a == "--rm" || a == "--rm=true";
    });
}

std::vector<std::string> createArgs(const CreateSpec& spec) {
    std::vector<std::string> args{"create",
                                  "--name",
                                  spec.containerName,
                                  "--label",
                                  std::string(kComponentLabel) + "=" + spec.component,
                                  "--label",
                                  std::string(kTagLabel) + "=" + spec.releaseTag};
    if (!runArgsChooseRestart(spec.runArgs))
        args.push_back("--restart=always");
    args.insert(args.end(), spec.runArgs.begin(), spec.runArgs.end());
    args.push_back(spec.imageRef);
    return args;
}

std::vector<std::string> parseLoadedImages(const std::string& output) {
    std::vector<std::string> refs;
    for (const auto& l : lines(output)) {
        const std::string t = trim(l);
        if (t.rfind("Loaded image", 0) != 0)
            continue;
        size_t colon = t.find(": ");
        if (colon == std::string::npos)
            continue;
        for (const auto& r : split(t.substr(colon + 2), ',')) {
            std::string ref = trim(r);
            if (!ref.empty() && std::find(refs.begin(), refs.end(), ref) == refs.end())
                refs.push_back(ref);
        }
    }
    return refs;
}

bool isImageId(const std::string& ref) {
    if (ref.rfind("sha256:", 0) == 0)
        return true;
    return ref.size() >= 12 && std::all_of(ref.begin(), ref.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string stateFormat() {
    return std::string(kMarker) +
           "{{.State.Status}}|{{.State.Running}}|{{.State.Restarting}}|{{.RestartCount}}|"
           "{{index .Config.Labels \"" +
           kComponentLabel + "\"}}|{{index .Config.Labels \"" + kTagLabel + "\"}}";
}

std::optional<ContainerState> parseState(const std::string& output) {
    for (const auto& l : markedLines(output)) {
        auto f = split(l, '|');
        if (f.size() < 6)
            continue;
        ContainerState s;
        s.status = f[0];
        s.running = f[1] == "true";
        s.restarting = f[2] == "true";
        try {
            s.restartCount = std::stoll(f[3]);
        } catch (...) {
            continue;
        }
        s.componentLabel = labelValue(f[4]);
        // A tag holding '|' is put back together: the tag label is the last field.
        std::string tag = f[5];
        for (size_t i = 6; i < f.size(); ++i)
            tag += "|" + f[i];
        s.tagLabel = labelValue(tag);
        return s;
    }
    return std::nullopt;
}

bool saysNoSuchContainer(const std::string& output) {
    const std::string l = lower(output);
    return l.find("no such container") != std::string::npos ||
           l.find("no such object") != std::string::npos;
}

std::string imageListFormat() {
    return std::string(kMarker) + "{{.Repository}}|{{.Tag}}";
}

std::vector<std::string> parseImageList(const std::string& output, const std::string& image) {
    std::vector<std::string> tags;
    const bool hasDomain = image.find('/') != std::string::npos &&
                           (image.substr(0, image.find('/')).find('.') != std::string::npos ||
                            image.substr(0, image.find('/')).find(':') != std::string::npos ||
                            image.substr(0, image.find('/')) == "localhost");
    for (const auto& l : markedLines(output)) {
        auto f = split(l, '|');
        if (f.size() != 2 || f[1].empty() || f[1] == "<none>")
            continue;
        const std::string& repo = f[0];
        bool match = repo == image;
        if (!hasDomain) {
            match = match || repo == "localhost/" + image || repo == "docker.io/" + image ||
                    repo == "docker.io/library/" + image;
        }
        if (match && std::find(tags.begin(), tags.end(), f[1]) == tags.end())
            tags.push_back(f[1]);
    }
    return tags;
}

std::vector<std::string> tagsToPrune(const std::vector<std::string>& present,
                                     const std::vector<std::string>& history,
                                     const std::set<std::string>& protect, size_t keep) {
    size_t kept = 0;
    std::vector<std::pair<long, std::string>> others;  // (recency rank, tag)
    for (const auto& t : present) {
        if (protect.count(t)) {
            ++kept;
            continue;
        }
        auto it = std::find(history.rbegin(), history.rend(), t);
        long rank = it == history.rend() ? -1 : static_cast<long>(history.rend() - it);
        others.emplace_back(rank, t);
    }
    // Newest first; among tags missing from the history, a stable name order.
    std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<std::string> prune;
    for (const auto& o : others) {
        if (kept < keep) {
            ++kept;
            continue;
        }
        prune.push_back(o.second);
    }
    return prune;
}

}  // namespace rra::container
