/* Prints the SHA-256 (libcrypto) and the zlib-compressed size of each
   argument: a small C program that links two runtime libraries. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

int main(int argc, char **argv) {
    const char *fallback[] = {"layerscope"};
    const char **in = argc > 1 ? (const char **)(argv + 1) : fallback;
    int n = argc > 1 ? argc - 1 : 1;
    for (int i = 0; i < n; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        size_t sz = strlen(in[i]);
        EVP_Digest(in[i], sz, md, &len, EVP_sha256(), NULL);
        unsigned char out[1024];
        uLongf outlen = sizeof out;
        if (compress(out, &outlen, (const Bytef *)in[i], (uLong)sz) != Z_OK) return 1;
        for (unsigned int j = 0; j < len; j++) printf("%02x", md[j]);
        printf("  %lu->%lu  %s\n", (unsigned long)sz, (unsigned long)outlen, in[i]);
    }
    return 0;
}
