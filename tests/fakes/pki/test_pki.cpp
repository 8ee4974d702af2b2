#include "fakes/pki/test_pki.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace rra::fakes {
namespace {

void run(const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0)
        throw std::runtime_error("command failed: " + cmd);
}

}  // namespace

TestPki TestPki::generate(const std::string& dir) {
    run("mkdir -p '" + dir + "'");
    TestPki p{dir, dir + "/ca.pem", dir + "/server.pem", dir + "/server.key",
              dir + "/other-ca.pem"};
    const std::string q = "'" + dir + "'";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string caExt =
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    run("openssl req -x509" + ec + " -keyout " + q + "/ca.key -out " + q +
        "/ca.pem -days 3 -subj /CN=rra-test-ca" + caExt);
    run("openssl req -x509" + ec + " -keyout " + q + "/other-ca.key -out " + q +
        "/other-ca.pem -days 3 -subj /CN=rra-other-ca" + caExt);
    {
        std::ofstream ext(dir + "/server.ext");
        ext << "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\n";
    }
    run("openssl req -new" + ec + " -keyout " + q + "/server.key -out " + q +
        "/server.csr -subj /CN=localhost");
    run("openssl x509 -req -in " + q + "/server.csr -CA " + q + "/ca.pem -CAkey " + q +
        "/ca.key -CAcreateserial -out " + q + "/server.pem -days 2 -extfile " + q + "/server.ext");
    return p;
}

}  // namespace rra::fakes
