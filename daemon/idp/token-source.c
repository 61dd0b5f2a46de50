/* What every token source shares: one way to post to the identity provider, one way to name
 * its errors. See token-source.h for the seam. */
#include <stdio.h>

#include "idp/token-source.h"

#define HTTP_MAX_CONNECT_TIMEOUT (10 * USEC_PER_SEC)

static int post(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url, const Secret *body,
                bool fresh, http_done_fn done, void *userdata, HttpRequest **ret, char request_id[static 37]) {
        HttpOptions opts = {
                .fresh_connect = fresh,
                .ca_file = cfg->ca_file,
                .timeout = ctx->http_timeout,
                .connect_timeout = MIN(ctx->http_timeout, HTTP_MAX_CONNECT_TIMEOUT),
                .max_body = HTTP_MAX_BODY_DEFAULT,
                .request_id = uuid4_string(request_id),
                .headers = (const char *const[]) { TOKEN_SOURCE_LIB_CAPABILITY },
                .n_headers = 1,
        };

        return http_post_form(ctx->http, url, body, &opts, done, userdata, ret);
}

int token_source_get(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url,
                     const char *const *headers, size_t n_headers, const char *secret_header_name,
                     const Secret *secret_header_value, http_done_fn done, void *userdata, HttpRequest **ret,
                     char request_id[static 37]) {
        HttpOptions opts = {
                .ca_file = cfg->ca_file,
                .timeout = ctx->http_timeout,
                .connect_timeout = MIN(ctx->http_timeout, HTTP_MAX_CONNECT_TIMEOUT),
                .max_body = HTTP_MAX_BODY_DEFAULT,
                .request_id = uuid4_string(request_id),
                /* No x-ms-lib-capability: it is for Azure AD's token endpoint, and MSAL sends
                 * it nowhere else. */
                .headers = headers,
                .n_headers = n_headers,
                .secret_header_name = secret_header_name,
                .secret_header_value = secret_header_value,
                .local_service = true,
        };

        return http_get(ctx->http, url, &opts, done, userdata, ret);
}

int token_source_post(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url, const Secret *body,
                      http_done_fn done, void *userdata, HttpRequest **ret, char request_id[static 37]) {
        return post(ctx, cfg, url, body, false, done, userdata, ret, request_id);
}

int token_source_post_fresh(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url,
                            const Secret *body, http_done_fn done, void *userdata, HttpRequest **ret,
                            char request_id[static 37]) {
        return post(ctx, cfg, url, body, true, done, userdata, ret, request_id);
}

const char *token_source_error_words(const AadError *e, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s%s%s%s%s%s%s", e->error ? e->error : "unexpected answer", e->description ? ": " : "",
                 e->description ? e->description : "", e->suberror ? " (suberror " : "", e->suberror ? e->suberror : "",
                 e->suberror ? ")" : "", e->correlation_id ? " (correlation id " : "",
                 e->correlation_id ? e->correlation_id : "", e->correlation_id ? ")" : "");
        return buf;
}
