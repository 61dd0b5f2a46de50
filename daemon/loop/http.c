/* HTTPS POSTs through one curl multi handle driven by sd-event (socket and timer callbacks). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "base/list.h"
#include "base/macro.h"
#include "loop/http.h"
#include "version.h"

#define HTTP_RETRY_AFTER_MAX 128

typedef struct HttpIo HttpIo;

/* One socket curl asked us to watch. */
struct HttpIo {
        HttpClient *client;
        sd_event_source *source;
        LIST_FIELDS(HttpIo, ios);
};

typedef enum RequestState {
        REQUEST_ACTIVE,      /* in the multi handle */
        REQUEST_COMPLETED,   /* finished, its callback waits for the loop */
        REQUEST_DISPATCHING, /* its callback runs now */
} RequestState;

struct HttpRequest {
        HttpClient *client;
        LIST_FIELDS(HttpRequest, queue); /* on active or completed */
        RequestState state;

        CURL *easy;
        struct curl_slist *headers;
        char *form; /* our own copy of the secret body, wiped when freed */
        size_t form_len;

        char *data; /* the answer may carry tokens: grown by copy and wiped, never realloc'd */
        size_t data_len, data_cap, max_body;
        bool too_large;
        char *retry_after;
        char *www_authenticate;
        bool get;

        CURLcode code;
        char errbuf[CURL_ERROR_SIZE];

        http_done_fn done;
        void *userdata;
};

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *defer; /* runs completion callbacks from the loop, one per iteration */
        LIST_HEAD(HttpIo, ios);
        LIST_HEAD(HttpRequest, active);
        LIST_HEAD(HttpRequest, completed); /* oldest first */
        size_t n_requests;
};

static void http_io_free(HttpIo *io) {
        if (!io)
                return;
        LIST_REMOVE(ios, io->client->ios, io);
        sd_event_source_disable_unref(io->source);
        free(io);
}

static void http_request_free(HttpRequest *req) {
        if (!req)
                return;
        if (req->easy)
                curl_easy_cleanup(req->easy);
        /* A header may carry a secret (secret_header_value): wipe them all. */
        for (struct curl_slist *l = req->headers; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(req->headers);
        erase_and_free(req->form, req->form_len + 1);
        erase_and_free(req->data, req->data_cap);
        free(req->retry_after);
        free(req->www_authenticate);
        free(req);
}

/* The map from CURLcode to the errno the header promises. The OS errno refines a few: a reset
 * during the TLS handshake is a reset, not a TLS failure. */
static int http_errno_from_curl(CURLcode code, long os_errno, bool too_large) {
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
                        return -EHOSTUNREACH;
                if (os_errno == ETIMEDOUT)
                        return -ETIMEDOUT;
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SSL_CONNECT_ERROR:
                if (os_errno == ECONNRESET || os_errno == EPIPE)
                        return -ECONNRESET;
                return -EPROTO;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_USE_SSL_FAILED:
                return -EPROTO;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
                return -ECONNRESET;
        case CURLE_PARTIAL_FILE:
                return -EPIPE;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_WRITE_ERROR:
                return too_large ? -EFBIG : -EIO;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Deliver the oldest completed request. The client is not touched after the callback: the
 * callback may free it. */
static int http_on_dispatch(sd_event_source *s, void *userdata) {
        HttpClient *c = userdata;
        HttpRequest *req = c->completed;
        HttpResponse response = {};
        long os_errno = 0;
        bool idle;
        int result;

        if (!req) {
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
                return 0;
        }
        LIST_REMOVE(queue, c->completed, req);
        if (!c->completed)
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        c->n_requests--;
        req->state = REQUEST_DISPATCHING;
        req->client = NULL;

        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &response.status);
        (void) curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &os_errno);
        result = http_errno_from_curl(req->code, os_errno, req->too_large);

        response.body = req->data ? req->data : "";
        response.body_len = req->data_len;
        response.retry_after = req->retry_after;
        response.www_authenticate = req->www_authenticate;
        if (result < 0) {
                if (result == -EFBIG)
                        (void) snprintf(req->errbuf, sizeof req->errbuf, "The answer is larger than %zu bytes",
                                        req->max_body);
                else if (req->errbuf[0] == 0)
                        (void) snprintf(req->errbuf, sizeof req->errbuf, "%s", curl_easy_strerror(req->code));
                response.error = req->errbuf;
        }

        idle = c->n_requests == 0;
        req->done(req, result, &response, req->userdata);
        http_request_free(req);
        /* A TLS exchange leaves ~100 KiB of freed heap pages behind (OpenSSL's handshake
         * buffers); a jump host runs hundreds of daemons that sleep for an hour between two:
         * hand the pages back (bench/RESULTS.md, memory). */
        if (idle)
                (void) malloc_trim(0);
        return 0;
}

/* Move every finished transfer out of the multi handle onto the completed queue. Callbacks
 * never run here: we are inside an sd-event callback that still uses curl state. */
static void http_collect_finished(HttpClient *c) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                HttpRequest *req = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req) != CURLE_OK || !req)
                        continue;

                req->code = msg->data.result; /* msg is invalid after remove_handle */
                (void) curl_multi_remove_handle(c->multi, req->easy);
                LIST_REMOVE(queue, c->active, req);
                req->state = REQUEST_COMPLETED;
                LIST_APPEND(queue, c->completed, req);
        }

        if (c->completed)
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ON);
}

static int http_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;

        /* This may remove s (CURL_POLL_REMOVE): sd-event keeps it alive until we return. */
        (void) curl_multi_socket_action(c->multi, fd, action, &running);
        http_collect_finished(c);
        return 0;
}

static int http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpClient *c = userp;
        HttpIo *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                http_io_free(io);
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (io)
                return sd_event_source_set_io_events(io->source, events) < 0 ? -1 : 0;

        io = calloc(1, sizeof *io);
        if (!io)
                return -1;
        io->client = c;
        if (sd_event_add_io(c->event, &io->source, fd, events, http_on_io, c) < 0) {
                free(io);
                return -1;
        }
        (void) sd_event_source_set_description(io->source, "http-io");
        LIST_PREPEND(ios, c->ios, io);
        if (curl_multi_assign(c->multi, fd, io) != CURLM_OK) {
                http_io_free(io);
                return -1;
        }
        return 0;
}

static int http_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpClient *c = userdata;
        int running;

        (void) curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        http_collect_finished(c);
        return 0;
}

/* curl's one timer. CLOCK_MONOTONIC, as curl's own clock: curl re-arms it if it fired early. */
static int http_on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        HttpClient *c = userp;
        usec_t when;

        if (timeout_ms < 0)
                return c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0;

        when = now_monotonic() + (usec_t) timeout_ms * USEC_PER_MSEC;
        if (c->timer) {
                if (sd_event_source_set_time(c->timer, when) < 0 ||
                    sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                        return -1;
                return 0;
        }
        /* Accuracy of 1 ms, not sd-event's default 250 ms: timeouts are part of the contract. */
        if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, when, USEC_PER_MSEC, http_on_timer, c) < 0)
                return -1;
        (void) sd_event_source_set_description(c->timer, "http-timer");
        return 0;
}

static bool host_is_loopback(const char *host, size_t n) {
        struct in6_addr a6;
        struct in_addr a4;
        char buf[INET6_ADDRSTRLEN];

        if ((n == (sizeof "localhost" - 1) && strncasecmp(host, "localhost", n) == 0) ||
            (n > (sizeof ".localhost" - 1) && strncasecmp(host + n - (sizeof ".localhost" - 1), ".localhost", 10) == 0))
                return true;
        if (n >= sizeof buf)
                return false;
        memcpy(buf, host, n);
        buf[n] = 0;
        if (inet_pton(AF_INET, buf, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        return inet_pton(AF_INET6, buf, &a6) == 1 &&
               (IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127));
}

bool http_url_bypasses_proxy(const char *url, bool local_service) {
        const char *host, *end;

        if (local_service)
                return true;
        if (!url)
                return false;
        host = strstr(url, "://");
        if (!host)
                return false;
        host += 3;
        end = host + strcspn(host, "/?#");
        for (const char *at = host; at < end; at++)
                if (*at == '@')
                        host = at + 1;
        if (*host == '[') {
                const char *close = memchr(host, ']', end - host);
                return close && host_is_loopback(host + 1, close - host - 1);
        }
        return host_is_loopback(host, MIN(strcspn(host, ":/?#"), (size_t) (end - host)));
}

int http_client_new(sd_event *event, HttpClient **ret) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;

        c = calloc(1, sizeof *c);
        if (!c) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        if (event)
                c->event = sd_event_ref(event);
        else {
                r = sd_event_default(&c->event);
                if (r < 0)
                        return r;
        }

        r = sd_event_add_defer(c->event, &c->defer, http_on_dispatch, c);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->defer, "http-dispatch");

        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_on_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;

        *ret = TAKE_PTR(c);
        return 0;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;

        while (c->active)
                http_request_cancel(c->active);
        while (c->completed)
                http_request_cancel(c->completed);
        /* Closes the cached connections; may still call our socket and timer callbacks. */
        if (c->multi)
                curl_multi_cleanup(c->multi);
        while (c->ios)
                http_io_free(c->ios);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->defer);
        sd_event_unref(c->event);
        free(c);
        curl_global_cleanup();
        return NULL;
}

size_t http_client_active(const HttpClient *c) {
        return c ? c->n_requests : 0;
}

void http_request_cancel(HttpRequest *req) {
        HttpClient *c;

        if (!req || req->state == REQUEST_DISPATCHING)
                return;

        c = req->client;
        if (req->state == REQUEST_ACTIVE) {
                LIST_REMOVE(queue, c->active, req);
                (void) curl_multi_remove_handle(c->multi, req->easy);
        } else {
                LIST_REMOVE(queue, c->completed, req);
                if (!c->completed)
                        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        }
        c->n_requests--;
        http_request_free(req);
}

static size_t http_on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *req = userdata;
        size_t n = size * nmemb;

        if (n > req->max_body - req->data_len) {
                req->too_large = true;
                return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        }

        if (req->data_len + n + 1 > req->data_cap) {
                size_t cap = MAX(req->data_cap * 2, MAX(req->data_len + n + 1, (size_t) 4096));

                cap = MIN(cap, req->max_body + 1);
                if (erase_realloc(&req->data, &req->data_cap, req->data_len, cap) < 0)
                        return 0;
        }

        memcpy(req->data + req->data_len, ptr, n);
        req->data_len += n;
        req->data[req->data_len] = 0;
        return n;
}

/* Around a header value: HTTP's optional whitespace (SP, HT) and the line's own CR LF. */
static bool is_http_ows_or_eol(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The value of header line buf (n bytes) if it is name ("retry-after:"), trimmed; else NULL. */
static char *header_value(const char *buf, size_t n, const char *name) {
        size_t nl = strlen(name), len;
        const char *p;

        if (n <= nl || strncasecmp(buf, name, nl) != 0)
                return NULL;
        p = buf + nl;
        len = n - nl;
        while (len > 0 && is_http_ows_or_eol(*p)) {
                p++;
                len--;
        }
        while (len > 0 && is_http_ows_or_eol(p[len - 1]))
                len--;
        if (len == 0 || len >= HTTP_RETRY_AFTER_MAX || memchr(p, 0, len))
                return NULL;
        return strndup(p, len);
}

static size_t http_on_header(char *buf, size_t size, size_t nitems, void *userdata) {
        HttpRequest *req = userdata;
        size_t n = size * nitems;
        char *v;

        if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
                /* A new status line (after a 1xx, or a proxy's CONNECT answer): start over. */
                free(req->retry_after);
                req->retry_after = NULL;
                free(req->www_authenticate);
                req->www_authenticate = NULL;
        } else if ((v = header_value(buf, n, "retry-after:"))) {
                free(req->retry_after);
                req->retry_after = v;
        } else if ((v = header_value(buf, n, "www-authenticate:"))) {
                free(req->www_authenticate);
                req->www_authenticate = v;
        }
        return n;
}

static long usec_to_msec_long(usec_t u, usec_t fallback) {
        usec_t ms;

        if (u == 0)
                u = fallback;
        ms = (u + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > (usec_t) LONG_MAX ? LONG_MAX : (long) ms;
}

static int http_add_header(HttpRequest *req, const char *line) {
        struct curl_slist *l = curl_slist_append(req->headers, line);

        if (!l)
                return -ENOMEM;
        req->headers = l;
        return 0;
}

static int http_request_setup(HttpRequest *req, const char *url, const HttpOptions *opts) {
        char line[256];
        CURL *e = req->easy;
        int r;

        r = req->get ? 0 : http_add_header(req, "Content-Type: application/x-www-form-urlencoded");
        if (r >= 0)
                r = http_add_header(req, "Accept: application/json");
        if (r >= 0)
                r = http_add_header(req, "x-client-SKU: aksspark-tokend");
        if (r >= 0)
                r = http_add_header(req, "x-client-Ver: " PACKAGE_VERSION);
        if (r >= 0) /* no 100-continue round trip for bodies with a long refresh token */
                r = http_add_header(req, "Expect:");
        if (r >= 0 && opts->request_id) {
                if (strpbrk(opts->request_id, "\r\n") ||
                    snprintf(line, sizeof line, "client-request-id: %s", opts->request_id) >= (int) sizeof line)
                        return -EINVAL;
                r = http_add_header(req, line);
                if (r >= 0)
                        r = http_add_header(req, "return-client-request-id: true");
        }
        for (size_t i = 0; r >= 0 && i < opts->n_headers; i++) {
                if (!opts->headers[i] || strpbrk(opts->headers[i], "\r\n") || !strchr(opts->headers[i], ':'))
                        return -EINVAL;
                r = http_add_header(req, opts->headers[i]);
        }
        if (r >= 0 && opts->secret_header_name) {
                const char *v = secret_reveal(opts->secret_header_value);
                char *h;
                size_t n;

                if (!v || strpbrk(v, "\r\n") || strpbrk(opts->secret_header_name, "\r\n:"))
                        return -EINVAL;
                n = strlen(opts->secret_header_name) + 2 + strlen(v) + 1;
                h = malloc(n);
                if (!h)
                        return -ENOMEM;
                snprintf(h, n, "%s: %s", opts->secret_header_name, v);
                r = http_add_header(req, h);
                erase_and_free(h, n);
        }
        if (r < 0)
                return r;

        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, "aksspark-tokend/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK ||
            (req->get ? curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK
                      : (curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
                         curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->form_len) != CURLE_OK ||
                         curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->form) != CURLE_OK)) ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                             usec_to_msec_long(opts->connect_timeout, HTTP_CONNECT_TIMEOUT_DEFAULT)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, usec_to_msec_long(opts->timeout, HTTP_TIMEOUT_DEFAULT)) !=
                    CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            /* Fails early on a Content-Length past the cap; the write callback catches the rest. */
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) req->max_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, req) != CURLE_OK)
                return -EIO;

        /* Debian's libcurl keeps its CApath (/etc/ssl/certs) when CAINFO is set, so the system
         * trust stays and ca_file adds to it (tests/test-http.c checks this). A libcurl built
         * without a CApath would use ca_file alone. */
        /* "" turns off the proxy libcurl would take from the environment. */
        if (http_url_bypasses_proxy(url, opts->local_service) && curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK)
                return -EINVAL;
        if (opts->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, opts->ca_file) != CURLE_OK)
                return -EIO;
        if (opts->fresh_connect && (curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
                                    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK))
                return -EIO;
        /* curl resolves names in a thread. Without QUICK_EXIT, removing a transfer whose lookup
         * still runs (a timeout, a cancel, our exit) joins that thread, and the loop waits as long
         * as the lookup hangs; with it the thread is left to finish alone (7.87 and later). */
        if (curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK)
                return -EIO;
#if LIBCURL_VERSION_NUM >= 0x075700
        /* A rotated ca_file counts from the next connection, not a day later. */
        if (curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 0L) != CURLE_OK)
                return -EIO;
#endif
        return 0;
}

static int http_start(HttpClient *c, const char *url, bool get, const Secret *body, const HttpOptions *opts,
                      http_done_fn done, void *userdata, HttpRequest **ret);

int http_post_form(HttpClient *c, const char *url, const Secret *body, const HttpOptions *opts, http_done_fn done,
                   void *userdata, HttpRequest **ret) {
        return http_start(c, url, false, body, opts, done, userdata, ret);
}

int http_get(HttpClient *c, const char *url, const HttpOptions *opts, http_done_fn done, void *userdata,
             HttpRequest **ret) {
        return http_start(c, url, true, NULL, opts, done, userdata, ret);
}

static int http_start(HttpClient *c, const char *url, bool get, const Secret *body, const HttpOptions *opts,
                      http_done_fn done, void *userdata, HttpRequest **ret) {
        static const HttpOptions defaults = {};
        HttpRequest *req;
        int r;

        if (!c || !url || !done)
                return -EINVAL;
        if (!opts)
                opts = &defaults;

        req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        req->done = done;
        req->userdata = userdata;
        req->get = get;
        req->max_body = opts->max_body > 0 ? opts->max_body : HTTP_MAX_BODY_DEFAULT;
        req->form_len = secret_len(body);
        req->form = malloc(req->form_len + 1);
        req->easy = curl_easy_init();
        if (!req->form || !req->easy) {
                http_request_free(req);
                return -ENOMEM;
        }
        if (req->form_len > 0)
                memcpy(req->form, secret_reveal(body), req->form_len);
        req->form[req->form_len] = 0;

        r = http_request_setup(req, url, opts);
        if (r < 0) {
                http_request_free(req);
                return r;
        }
        /* Arms curl's timer at 0: the transfer starts from the loop, not from here. */
        if (curl_multi_add_handle(c->multi, req->easy) != CURLM_OK) {
                http_request_free(req);
                return -EIO;
        }

        req->client = c;
        req->state = REQUEST_ACTIVE;
        LIST_PREPEND(queue, c->active, req);
        c->n_requests++;
        if (ret)
                *ret = req;
        return 0;
}
