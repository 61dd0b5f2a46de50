/* HTTPS POSTs (and GETs) through one curl multi handle driven by sd-event: nothing here blocks the loop.
 * Knows nothing of Azure. Connections are reused across requests to the same host. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "base/secret.h"
#include "base/util.h"

#define HTTP_MAX_BODY_DEFAULT (1024 * 1024)
#define HTTP_TIMEOUT_DEFAULT (30 * USEC_PER_SEC)         /* used when HttpOptions.timeout is 0 */
#define HTTP_CONNECT_TIMEOUT_DEFAULT (10 * USEC_PER_SEC) /* used when .connect_timeout is 0 */

typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

/* TLS is always verified (peer and host name) against the system trust store plus ca_file.
 * Only http and https, no redirects (a 3xx is an answer), proxies from the usual environment
 * variables (https_proxy, http_proxy, all_proxy, no_proxy), as libcurl reads them. */
typedef struct HttpOptions {
        const char *ca_file; /* extra trust anchors on top of the system's; NULL = none */
        usec_t timeout;      /* whole exchange */
        usec_t connect_timeout;
        size_t max_body;            /* a longer answer fails with -EFBIG */
        const char *request_id;     /* sent as client-request-id; NULL = none */
        const char *const *headers; /* extra "Name: value" lines (n_headers of them); no secret */
        size_t n_headers;
        const char *secret_header_name; /* one header whose value is a secret (wiped when done) */
        const Secret *secret_header_value;
        bool fresh_connect; /* a new connection, not a cached one, and not kept after */
        bool local_service; /* a managed-identity endpoint: never through a proxy */
} HttpOptions;

typedef struct HttpResponse {
        long status;      /* HTTP status, 0 if none arrived */
        const char *body; /* NUL-terminated, body_len bytes */
        size_t body_len;
        const char *retry_after;      /* header value or NULL */
        const char *www_authenticate; /* header value or NULL */
        const char *error;            /* transport failure in words (curl's), NULL on success */
} HttpResponse;

/* result: 0 when a whole HTTP answer arrived (any status), else a transport failure:
 *   -ETIMEDOUT        connect or total timeout
 *   -ECONNREFUSED     nothing listens (server or proxy)
 *   -EHOSTUNREACH     name not resolved, or no route
 *   -EPROTO           TLS failed: untrusted certificate, wrong host name, handshake error
 *   -ECONNRESET       connection reset or closed before an answer (also mid-TLS-handshake)
 *   -EPIPE            the answer was cut short (less than its Content-Length)
 *   -EFBIG            the answer is larger than max_body
 *   -EPROTONOSUPPORT  the URL is not http or https;  -EINVAL  malformed URL
 *   -ENOMEM, -EIO     anything else
 * response is never NULL; on failure its error holds curl's words (no body, no secret).
 * The request is freed after the callback returns; response is valid only during it. */
typedef void (*http_done_fn)(HttpRequest *req, int result, const HttpResponse *response, void *userdata);

/* Whether a request to url goes to its server directly, whatever http_proxy, https_proxy or
 * ALL_PROXY say: a local service (the managed-identity endpoints, whose answers and headers are
 * secrets and which a proxy cannot reach anyway) and any loopback host (localhost, 127.0.0.0/8,
 * ::1). Pure. */
bool http_url_bypasses_proxy(const char *url, bool local_service);

int http_client_new(sd_event *event, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* POST an application/x-www-form-urlencoded body (a Secret: it may carry a refresh token).
 * The body is copied (and wiped when done); the callback runs from the event loop, never from
 * inside this call. opts may be NULL (defaults). A negative return means nothing started and
 * done will not run. ret may be NULL. Callbacks may cancel other requests, start new ones, or
 * free the client. */
int http_post_form(HttpClient *c, const char *url, const Secret *body, const HttpOptions *opts, http_done_fn done,
                   void *userdata, HttpRequest **ret);

/* GET url (no body), otherwise as http_post_form(). */
int http_get(HttpClient *c, const char *url, const HttpOptions *opts, http_done_fn done, void *userdata,
             HttpRequest **ret);

/* Abort a request in flight; its callback will not run. NULL-safe; a no-op from inside the
 * request's own callback. */
void http_request_cancel(HttpRequest *req);

/* Requests in flight (for tests and status). */
size_t http_client_active(const HttpClient *c);
