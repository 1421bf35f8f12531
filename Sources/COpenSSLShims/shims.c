#include "COpenSSLShims.h"
#include <string.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

int cbs_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int cbs_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

void cbs_ssl_ctx_set_options(SSL_CTX *ctx, uint64_t options) {
    SSL_CTX_set_options(ctx, options);
}

uint64_t cbs_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
uint64_t cbs_op_no_ticket(void) { return SSL_OP_NO_TICKET; }
uint64_t cbs_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
uint64_t cbs_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
int cbs_tls1_version(void) { return TLS1_VERSION; }
int cbs_tls1_1_version(void) { return TLS1_1_VERSION; }
int cbs_tls1_2_version(void) { return TLS1_2_VERSION; }
int cbs_tls1_3_version(void) { return TLS1_3_VERSION; }

int cbs_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static int copy_out(const unsigned char *data, int length, char *out, int len) {
    if (len > 0) {
        int n = length < len - 1 ? length : len - 1;
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    return length;
}

int cbs_x509_common_name(X509 *cert, char *out, int len) {
    X509_NAME *name = X509_get_subject_name(cert);
    int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index < 0) return -1;
    ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    return copy_out(ASN1_STRING_get0_data(value), ASN1_STRING_length(value), out, len);
}

/* The URIs are handed out one at a time, as bytes with their length: never
 * joined with a separator, which a URI could itself contain (a certificate
 * with "https://x/\nbilling://internal/evil" must stay one URI). */
static GENERAL_NAMES *san_names(X509 *cert) {
    return X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

int cbs_x509_san_uri_count(X509 *cert) {
    GENERAL_NAMES *names = san_names(cert);
    if (names == NULL) return 0;
    int count = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        if (sk_GENERAL_NAME_value(names, i)->type == GEN_URI) count++;
    }
    GENERAL_NAMES_free(names);
    return count;
}

int cbs_x509_san_uri(X509 *cert, int index, unsigned char *out, int len) {
    GENERAL_NAMES *names = san_names(cert);
    if (names == NULL) return -1;
    int result = -1;
    for (int i = 0, seen = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        if (seen++ != index) continue;
        const ASN1_STRING *uri = name->d.uniformResourceIdentifier;
        result = ASN1_STRING_length(uri);
        if (result <= len) memcpy(out, ASN1_STRING_get0_data(uri), (size_t)result);
        break;
    }
    GENERAL_NAMES_free(names);
    return result;
}

EVP_PKEY *cbs_ec_p256_generate(void) {
    return EVP_EC_gen("P-256");
}

int cbs_x509_add_extension(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (extension == NULL) return 0;
    int ok = X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
    return ok;
}
