/* HTTPS POSTs through one curl multi handle driven by sd-event: nothing here blocks the loop.
 * Knows nothing of Azure. Connections are reused across requests to the same host. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "secret.h"
#include "util.h"

#define HTTP_MAX_BODY_DEFAULT (1024 * 1024)

typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

typedef struct HttpOptions {
        const char *ca_file;     /* extra trust anchors on top of the system's; NULL = none */
        usec_t timeout;          /* whole exchange */
        usec_t connect_timeout;
        size_t max_body;         /* a longer answer fails with -EFBIG */
        const char *request_id;  /* sent as client-request-id; NULL = none */
} HttpOptions;

typedef struct HttpResponse {
        long status;             /* HTTP status, 0 if none arrived */
        const char *body;        /* NUL-terminated, body_len bytes */
        size_t body_len;
        const char *retry_after; /* header value or NULL */
        const char *error;       /* transport failure in words (curl's), NULL on success */
} HttpResponse;

/* result: 0 when an HTTP answer arrived (any status), else -ETIMEDOUT, -ECONNREFUSED,
 * -EFBIG (answer too large), -ECONNRESET, -EPROTO (TLS), -EHOSTUNREACH, -EIO.
 * The request is freed after the callback returns; response is valid only during it. */
typedef void (*http_done_fn)(HttpRequest *req, int result, const HttpResponse *response, void *userdata);

int http_client_new(sd_event *event, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* POST an application/x-www-form-urlencoded body (a Secret: it may carry a refresh token).
 * The body is copied; the callback runs from the event loop, never from inside this call. */
int http_post_form(HttpClient *c, const char *url, const Secret *body, const HttpOptions *opts,
                   http_done_fn done, void *userdata, HttpRequest **ret);

/* Abort a request in flight; its callback will not run. NULL-safe. */
void http_request_cancel(HttpRequest *req);

/* Requests in flight (for tests and status). */
size_t http_client_active(const HttpClient *c);
