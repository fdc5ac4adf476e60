// Prints the SHA-256 (libcrypto) and the CRC-32 (zlib) of each argument.
#include <openssl/evp.h>
#include <zlib.h>

#include <cstdio>
#include <string>
#include <vector>

static std::string sha256(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
    std::string hex;
    char buf[3];
    for (unsigned int i = 0; i < len; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        hex += buf;
    }
    return hex;
}

int main(int argc, char** argv) {
    std::vector<std::string> inputs(argv + 1, argv + argc);
    if (inputs.empty()) inputs.push_back("layerscope");
    for (const auto& s : inputs) {
        unsigned long crc = crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size()));
        std::printf("%s  %08lx  %s\n", sha256(s).c_str(), crc, s.c_str());
    }
    return 0;
}
