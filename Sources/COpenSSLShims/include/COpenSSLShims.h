#ifndef COPENSSLSHIMS_H
#define COPENSSLSHIMS_H
#include <openssl/ssl.h>

/* Macros and variadic functions of OpenSSL that Swift cannot import. */
long cbs_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
long cbs_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
long cbs_ssl_ctx_set_options(SSL_CTX *ctx, long options);
long cbs_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
int cbs_tls1_2_version(void);
int cbs_tls1_3_version(void);
#endif
