/* The browser sign-in: PKCE, a one-shot loopback listener on 127.0.0.1, the redemption of the
 * code. A token source (token-source.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "idp/login-browser.h"
#include "idp/pkce.h"
#include "idp/redirect.h"
#include "idp/token-source.h"

#define BROWSER_CONNECTIONS_MAX 4 /* a browser opens a few (favicon, preconnect) */
#define BROWSER_IDLE_TIMEOUT (30 * USEC_PER_SEC)

typedef struct BrowserConnection {
        LoginBrowser *owner;
        int fd;
        sd_event_source *io;
        char buf[REDIRECT_HEAD_MAX + 1];
        size_t len;
        usec_t since;
} BrowserConnection;

struct LoginBrowser {
        const TokenSourceContext *ctx;
        const ProfileConfig *cfg;
        const char *name;
        const LoginBrowserCallbacks *cb;

        int listen_fd;
        sd_event_source *listen_io;
        sd_event_source *timeout;
        sd_event_source *announce;
        BrowserConnection *conns[BROWSER_CONNECTIONS_MAX];

        Pkce pkce;
        char redirect_uri[64];
        AadDeviceCode url; /* message and verification_uri (the authorize URL) */
        HttpRequest *req;
        usec_t sent;
};

static void connection_free(BrowserConnection *bc) {
        LoginBrowser *l;

        if (!bc)
                return;
        l = bc->owner;
        for (size_t i = 0; i < BROWSER_CONNECTIONS_MAX; i++)
                if (l->conns[i] == bc)
                        l->conns[i] = NULL;
        sd_event_source_disable_unref(bc->io);
        safe_close(bc->fd);
        /* the buffer held the code */
        explicit_bzero(bc->buf, sizeof bc->buf);
        free(bc);
}

static void listener_close(LoginBrowser *l) {
        l->listen_io = sd_event_source_disable_unref(l->listen_io);
        l->listen_fd = safe_close(l->listen_fd);
        for (size_t i = 0; i < BROWSER_CONNECTIONS_MAX; i++)
                connection_free(l->conns[i]);
}

/* The last thing any path does: the callee may free l. */
static void login_done(LoginBrowser *l, int result, AadToken *t, const char *error) {
        listener_close(l);
        l->cb->on_done(result, t, l->sent, error, l->cb->userdata);
}

static void answer_browser(BrowserConnection *bc, bool ok, const char *what) {
        _cleanup_free_ char *page = redirect_answer(ok, what);

        /* A few hundred bytes into a fresh socket's buffer: one non-blocking write. */
        if (page)
                (void) write(bc->fd, page, strlen(page));
        (void) shutdown(bc->fd, SHUT_WR);
}

static void on_redeem_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        LoginBrowser *l = userdata;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        _cleanup_free_ char *error = NULL;
        char buf[512];
        AadOutcome o;

        l->req = NULL;
        if (result < 0) {
                if (asprintf(&error, "the sign-in's code could not be redeemed: cannot reach %s: %s",
                             l->cfg->authority_host, resp && resp->error ? resp->error : strerror(-result)) < 0)
                        error = NULL;
                login_done(l, -EIO, NULL, error);
                return;
        }
        o = aad_parse_token_answer(resp->status, resp->body, resp->body_len, &t, &e);
        if (o == AAD_OK) {
                login_done(l, 0, &t, NULL);
                return;
        }
        if (asprintf(&error, "the sign-in's code was not accepted: %s", token_source_error_words(&e, buf, sizeof buf)) <
            0)
                error = NULL;
        log_warning("Profile %s: %s", l->name, error ?: "the code was not accepted");
        login_done(l, o == AAD_CONFIG_ERROR ? -EBADR : o == AAD_TRANSIENT ? -EIO : -EKEYREJECTED, NULL, error);
}

static void redeem(LoginBrowser *l, const Secret *code) {
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = aad_token_url(l->cfg);
        char request_id[37];
        int r;

        r = url ? aad_code_token_body(l->cfg, code, l->redirect_uri, l->pkce.verifier, NULL, &body) : -ENOMEM;
        if (r >= 0) {
                l->sent = now_realtime();
                r = token_source_post(l->ctx, l->cfg, url, body, on_redeem_done, l, &l->req, request_id);
        }
        if (r < 0) {
                login_done(l, -EIO, NULL, "cannot redeem the sign-in's code");
                return;
        }
        log_debug("Profile %s: redeeming the browser sign-in's code (request id %s).", l->name, request_id);
}

static bool state_matches(const LoginBrowser *l, const char *state) {
        return state && streq(state, l->pkce.state);
}

/* One request head from the browser: the redirect, or something else on the port. */
static void connection_handle(BrowserConnection *bc, const Redirect *r) {
        LoginBrowser *l = bc->owner;
        _cleanup_free_ char *error = NULL;

        if (r->kind == REDIRECT_OTHER) {
                answer_browser(bc, false, "This is aksspark-tokend's sign-in address; nothing else is here.");
                connection_free(bc);
                return;
        }
        if (!state_matches(l, r->state)) {
                /* Not our sign-in (another tab, a forged link): refuse it and keep waiting. */
                log_warning("Profile %s: the browser came back with a state that is not this sign-in's; ignored.",
                            l->name);
                answer_browser(bc, false, "This answer does not belong to the sign-in under way (state mismatch).");
                connection_free(bc);
                return;
        }
        if (r->kind == REDIRECT_ERROR) {
                answer_browser(bc, false, r->error_description ?: r->error);
                connection_free(bc);
                if (asprintf(&error, "the sign-in failed in the browser: %s%s%s", r->error,
                             r->error_description ? ": " : "", r->error_description ?: "") < 0)
                        error = NULL;
                log_warning("Profile %s: %s", l->name, error ?: r->error);
                login_done(l, -EKEYREJECTED, NULL, error);
                return;
        }
        answer_browser(bc, true, NULL);
        connection_free(bc);
        /* One code, one redemption: nothing more is accepted on the port. */
        l->listen_io = sd_event_source_disable_unref(l->listen_io);
        l->listen_fd = safe_close(l->listen_fd);
        redeem(l, r->code);
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BrowserConnection *bc = userdata;
        _cleanup_(redirect_clear) Redirect r = {};
        ssize_t n;
        int k;

        n = read(fd, bc->buf + bc->len, sizeof bc->buf - 1 - bc->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                connection_free(bc);
                return 0;
        }
        bc->len += (size_t) n;
        k = redirect_parse(bc->buf, bc->len, &r, NULL);
        if (k == -EAGAIN && bc->len < sizeof bc->buf - 1 && now_monotonic() - bc->since < BROWSER_IDLE_TIMEOUT)
                return 0;
        if (k < 0) {
                answer_browser(bc, false, "The request could not be read.");
                connection_free(bc);
                return 0;
        }
        connection_handle(bc, &r);
        return 0;
}

static int on_listen_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        LoginBrowser *l = userdata;
        BrowserConnection *bc;
        size_t slot;
        int cfd, r;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        for (slot = 0; slot < BROWSER_CONNECTIONS_MAX && l->conns[slot]; slot++)
                ;
        if (slot == BROWSER_CONNECTIONS_MAX) {
                /* the oldest waits longest: make room for the newcomer */
                connection_free(l->conns[0]);
                slot = 0;
        }
        bc = calloc(1, sizeof *bc);
        if (!bc) {
                safe_close(cfd);
                return 0;
        }
        *bc = (BrowserConnection) { .owner = l, .fd = cfd, .since = now_monotonic() };
        r = sd_event_add_io(l->ctx->event, &bc->io, cfd, EPOLLIN, on_connection_io, bc);
        if (r < 0) {
                safe_close(cfd);
                free(bc);
                return 0;
        }
        l->conns[slot] = bc;
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        LoginBrowser *l = userdata;

        log_warning("Profile %s: nobody came back from the browser within %s; the sign-in is over.", l->name, "10m");
        login_done(l, -EKEYEXPIRED, NULL, "nobody came back from the browser in time");
        return 0;
}

static int on_announce(sd_event_source *s, void *userdata) {
        LoginBrowser *l = userdata;

        l->cb->on_url(&l->url, l->cb->userdata);
        return 0;
}

int login_browser_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name, unsigned port,
                        const char *claims, const LoginBrowserCallbacks *callbacks, LoginBrowser **ret) {
        _cleanup_(login_browser_freep) LoginBrowser *l = NULL;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t salen = sizeof sa;
        uint8_t random[PKCE_RANDOM_BYTES];
        char *url;
        int r;

        if (port > 65535)
                return -EINVAL;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (LoginBrowser) { .ctx = ctx, .cfg = cfg, .name = name, .cb = callbacks, .listen_fd = -EBADF };

        for (size_t i = 0; i < sizeof random; i += sizeof(uint64_t)) {
                uint64_t v = random_u64();
                memcpy(random + i, &v, MIN(sizeof v, sizeof random - i));
        }
        r = pkce_new(random, &l->pkce);
        explicit_bzero(random, sizeof random);
        if (r < 0)
                return r;

        l->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->listen_fd < 0)
                return negative_errno();
        sa.sin_port = htons((uint16_t) port);
        if (bind(l->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(l->listen_fd, 8) < 0 ||
            getsockname(l->listen_fd, (struct sockaddr *) &sa, &salen) < 0)
                return negative_errno();
        /* localhost is what Azure AD lets a public client use with any port; only 127.0.0.1 listens. */
        snprintf(l->redirect_uri, sizeof l->redirect_uri, "http://localhost:%u/", (unsigned) ntohs(sa.sin_port));

        r = sd_event_add_io(ctx->event, &l->listen_io, l->listen_fd, EPOLLIN, on_listen_io, l);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(ctx->event, &l->timeout, CLOCK_BOOTTIME, LOGIN_BROWSER_TIMEOUT, USEC_PER_SEC,
                                       on_timeout, l);
        if (r < 0)
                return r;

        url = aad_authorize_url(cfg, l->redirect_uri, l->pkce.challenge, l->pkce.state, claims);
        if (!url)
                return -ENOMEM;
        l->url.verification_uri = url;
        l->url.expires_in = LOGIN_BROWSER_TIMEOUT;
        if (asprintf(
                    &l->url.message,
                    "To sign in, open this page in a web browser (on this machine, or one that forwards port %u to it): %s",
                    (unsigned) ntohs(sa.sin_port), url) < 0) {
                l->url.message = NULL;
                return -ENOMEM;
        }
        r = sd_event_add_defer(ctx->event, &l->announce, on_announce, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->announce, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        log_notice("Profile %s: waiting for the browser on 127.0.0.1:%u.", name, (unsigned) ntohs(sa.sin_port));
        *ret = TAKE_PTR(l);
        return 0;
}

LoginBrowser *login_browser_free(LoginBrowser *l) {
        if (!l)
                return NULL;
        listener_close(l);
        http_request_cancel(l->req);
        sd_event_source_disable_unref(l->timeout);
        sd_event_source_disable_unref(l->announce);
        pkce_clear(&l->pkce);
        aad_device_code_clear(&l->url);
        free(l);
        return NULL;
}

void login_browser_set_config(LoginBrowser *l, const ProfileConfig *cfg) {
        if (l)
                l->cfg = cfg;
}

const AadDeviceCode *login_browser_url(const LoginBrowser *l) {
        return l && l->url.verification_uri ? &l->url : NULL;
}
