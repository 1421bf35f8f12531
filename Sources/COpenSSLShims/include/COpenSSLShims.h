#ifndef COPENSSLSHIMS_H
#define COPENSSLSHIMS_H
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * What Swift cannot import from OpenSSL: macros, variadic functions and
 * stacks (sk_*), wrapped as plain functions. Nothing here holds state or
 * makes a decision; the Swift side does.
 */

/* Protocol versions and options (macros in OpenSSL 3). */
int cbs_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
int cbs_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
void cbs_ssl_ctx_set_options(SSL_CTX *ctx, uint64_t options);
uint64_t cbs_op_no_renegotiation(void);
uint64_t cbs_op_no_ticket(void);
uint64_t cbs_op_no_compression(void);
uint64_t cbs_op_cipher_server_preference(void);
int cbs_tls1_version(void);
int cbs_tls1_1_version(void);
int cbs_tls1_2_version(void);
int cbs_tls1_3_version(void);
int cbs_ssl_set_tlsext_host_name(SSL *ssl, const char *name);

/* Certificate inspection. Writes a NUL-terminated string of at most
 * len-1 bytes and returns the full length it needed, or -1 if absent. */
int cbs_x509_common_name(X509 *cert, char *out, int len);
/* The URI subject alternative names, one at a time: how many there are, and
 * the bytes of the index-th (copied when they fit in len; returns their
 * length, or -1 if there is no such URI). */
int cbs_x509_san_uri_count(X509 *cert);
int cbs_x509_san_uri(X509 *cert, int index, unsigned char *out, int len);

/* Key generation and certificate building (macros and stacks). */
EVP_PKEY *cbs_ec_p256_generate(void);
/* Adds an X.509v3 extension by its config text ("critical,CA:TRUE"),
 * with `issuer` as the issuing certificate (itself when self-signed). */
int cbs_x509_add_extension(X509 *cert, X509 *issuer, int nid, const char *value);
#endif
