/* Tests for http.c: real HTTPS on loopback (tests/http/server.py), a real sd-event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/http.h"
#include "testlib.h"
#include "version.h"

typedef struct TestServer {
        char *dir;
        char *url;
        char *ca;
        pid_t pid;
        int stdin_fd; /* the server exits when this closes */
} TestServer;

static TestServer server_a, server_b; /* two servers with two different CAs */

static void server_start(TestServer *s) {
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        char script[4096], line[256] = {};
        int in[2], out[2];
        size_t len = 0;
        usec_t deadline;

        snprintf(script, sizeof script, "%s/tests/http/server.py", src ? src : ".");
        s->dir = testlib_mkdtemp();
        ck_assert_int_ge(asprintf(&s->ca, "%s/ca.pem", s->dir), 0);
        ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);

        s->pid = fork();
        ck_assert_int_ge(s->pid, 0);
        if (s->pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                execlp("python3", "python3", script, "--dir", s->dir, (char *) NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        s->stdin_fd = in[1];

        deadline = now_monotonic() + 30 * USEC_PER_SEC;
        while (!memchr(line, '\n', len)) {
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                usec_t now = now_monotonic();
                ssize_t n;

                ck_assert_msg(now < deadline, "test server did not start");
                ck_assert_int_ge(poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1), 0);
                n = read(out[0], line + len, sizeof line - 1 - len);
                ck_assert_msg(n > 0, "test server exited before READY");
                len += (size_t) n;
        }
        close(out[0]);
        *strchr(line, '\n') = 0;
        ck_assert(strncmp(line, "READY ", 6) == 0);
        s->url = strdup(line + 6);
}

static void server_stop(TestServer *s) {
        if (s->pid > 0) {
                kill(s->pid, SIGTERM);
                waitpid(s->pid, NULL, 0);
        }
        if (s->stdin_fd >= 0)
                close(s->stdin_fd);
        testlib_rm_rf(s->dir);
        free(s->dir);
        free(s->url);
        free(s->ca);
        *s = (TestServer) { .stdin_fd = -1 };
}

static void servers_setup(void) {
        server_start(&server_a);
        server_start(&server_b);
}

/* test_system_trust_plus_ca_file cannot clean up after a failed assertion (the child exits at
 * once): remove any link to B's CA it left in the system directory from here, in the parent. */
static void remove_trust_links(const TestServer *s) {
        _cleanup_free_ char *hash_file = NULL, *hash = NULL;
        char link[4096], target[4096];
        size_t len;

        if (!s->dir || asprintf(&hash_file, "%s/ca.hash", s->dir) < 0 || read_file_full(hash_file, 64, &hash, &len) < 0)
                return;
        hash[strcspn(hash, "\n")] = 0;
        for (int i = 0; i < 10; i++) {
                ssize_t n;

                snprintf(link, sizeof link, "/etc/ssl/certs/%s.%d", hash, i);
                n = readlink(link, target, sizeof target - 1);
                if (n < 0)
                        continue;
                target[n] = 0;
                if (strcmp(target, s->ca) == 0)
                        (void) unlink(link);
        }
}

static void servers_teardown(void) {
        remove_trust_links(&server_b);
        server_stop(&server_a);
        server_stop(&server_b);
}

static char *url_of(const TestServer *s, const char *path) {
        char *u;
        ck_assert_int_ge(asprintf(&u, "%s%s", s->url, path), 0);
        return u;
}

/* What one callback saw. */
typedef struct Outcome {
        int calls;
        int result;
        long status;
        char *body;
        size_t body_len;
        char *retry_after;
        char *www_authenticate;
        char *error;
        usec_t done_at;
        HttpRequest *cancel_in_callback; /* another request to cancel from the callback */
        HttpClient **free_in_callback;   /* a client to free from the callback */
        bool cancel_self;
} Outcome;

static int total_calls;

static void outcome_clear(Outcome *o) {
        free(o->body);
        free(o->retry_after);
        free(o->www_authenticate);
        free(o->error);
        *o = (Outcome) {};
}

static void on_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        Outcome *o = userdata;

        ck_assert_ptr_nonnull(resp);
        total_calls++;
        o->calls++;
        o->result = result;
        o->status = resp->status;
        o->done_at = now_monotonic();
        ck_assert_ptr_nonnull(resp->body);
        ck_assert_uint_eq(strlen(resp->body), resp->body_len);
        o->body = strndup(resp->body, resp->body_len);
        o->body_len = resp->body_len;
        o->retry_after = resp->retry_after ? strdup(resp->retry_after) : NULL;
        o->www_authenticate = resp->www_authenticate ? strdup(resp->www_authenticate) : NULL;
        o->error = resp->error ? strdup(resp->error) : NULL;
        ck_assert((result < 0) == (resp->error != NULL));

        if (o->cancel_self)
                http_request_cancel(req);
        if (o->cancel_in_callback)
                http_request_cancel(o->cancel_in_callback);
        if (o->free_in_callback)
                *o->free_in_callback = http_client_free(*o->free_in_callback);
}

/* Run the loop until *counter reaches target; false on the deadline. */
static bool run_until(sd_event *e, const int *counter, int target, usec_t max) {
        usec_t deadline = now_monotonic() + max;

        while (*counter < target) {
                if (now_monotonic() >= deadline)
                        return false;
                ck_assert_int_ge(sd_event_run(e, 50 * USEC_PER_MSEC), 0);
        }
        return true;
}

static sd_event *event;
static HttpClient *client;

static void loop_setup(void) {
        total_calls = 0;
        ck_assert_int_ge(sd_event_new(&event), 0);
        ck_assert_int_eq(http_client_new(event, &client), 0);
}

static void loop_teardown(void) {
        client = http_client_free(client);
        event = sd_event_unref(event);
}

static Secret *form(const char *s) {
        Secret *b = secret_new_string(s);
        ck_assert_ptr_nonnull(b);
        return b;
}

/* POST to url and run the loop until the answer. */
static void post_and_wait(const char *url, const HttpOptions *opts, Outcome *o) {
        _cleanup_secret_ Secret *body = form("a=b");
        int before = o->calls;

        ck_assert_int_eq(http_post_form(client, url, body, opts, on_done, o, NULL), 0);
        ck_assert_int_eq(o->calls, before); /* never from inside http_post_form */
        ck_assert(run_until(event, &o->calls, before + 1, 20 * USEC_PER_SEC));
}

static const char *json_header(json_t *echo, const char *name) {
        return json_string_value(json_object_get(json_object_get(echo, "headers"), name));
}

START_TEST(test_post_echo) {
        _cleanup_free_ char *url = url_of(&server_a, "/echo");
        _cleanup_secret_ Secret *body = form("grant_type=refresh_token&refresh_token=0.AXo%2Bsecret");
        HttpOptions opts = { .ca_file = server_a.ca, .request_id = "8c0bd5a5-2d5f-4f8a-9a1c-3c2b2b8e3f10" };
        Outcome o = {};
        HttpRequest *req = NULL;
        json_t *echo;

        ck_assert_int_eq(http_post_form(client, url, body, &opts, on_done, &o, &req), 0);
        ck_assert_ptr_nonnull(req);
        body = secret_free(body); /* the request keeps its own copy */
        ck_assert_int_eq(o.calls, 0);
        ck_assert_uint_eq(http_client_active(client), 1);
        ck_assert(run_until(event, &o.calls, 1, 10 * USEC_PER_SEC));
        ck_assert_uint_eq(http_client_active(client), 0);

        ck_assert_int_eq(o.result, 0);
        ck_assert_int_eq(o.status, 200);
        ck_assert_ptr_null(o.error);
        echo = json_loads(o.body, 0, NULL);
        ck_assert_ptr_nonnull(echo);
        ck_assert_str_eq(json_string_value(json_object_get(echo, "method")), "POST");
        ck_assert_str_eq(json_string_value(json_object_get(echo, "body")),
                         "grant_type=refresh_token&refresh_token=0.AXo%2Bsecret");
        ck_assert_str_eq(json_header(echo, "content-type"), "application/x-www-form-urlencoded");
        ck_assert_str_eq(json_header(echo, "accept"), "application/json");
        ck_assert_str_eq(json_header(echo, "client-request-id"), opts.request_id);
        ck_assert_str_eq(json_header(echo, "return-client-request-id"), "true");
        ck_assert_str_eq(json_header(echo, "x-client-sku"), "aksspark-tokend");
        ck_assert_str_eq(json_header(echo, "x-client-ver"), PACKAGE_VERSION);
        ck_assert_ptr_null(json_header(echo, "expect"));
        json_decref(echo);
        outcome_clear(&o);

        /* Without a request id, no such header. */
        opts.request_id = NULL;
        post_and_wait(url, &opts, &o);
        echo = json_loads(o.body, 0, NULL);
        ck_assert_ptr_nonnull(echo);
        ck_assert_ptr_null(json_header(echo, "client-request-id"));
        ck_assert_ptr_null(json_header(echo, "return-client-request-id"));
        json_decref(echo);
        outcome_clear(&o);
}
END_TEST

static const char *extra_bad[1];

START_TEST(test_get_with_headers) {
        _cleanup_free_ char *url = url_of(&server_a, "/echo?api-version=2018-02-01&resource=x"),
                            *challenge = url_of(&server_a, "/challenge/%2Fvar%2Fopt%2Fk.key");
        _cleanup_secret_ Secret *value = secret_new_string("c2VjcmV0LWtleQ");
        static const char *const extra[] = { "Metadata: true", "x-ms-lib-capability: retry-after, h429" };
        HttpOptions opts = { .ca_file = server_a.ca,
                             .headers = extra,
                             .n_headers = 2,
                             .secret_header_name = "Authorization",
                             .secret_header_value = NULL };
        Outcome o = {};
        json_t *echo;

        opts.secret_header_value = value;
        ck_assert_int_eq(http_get(client, url, &opts, on_done, &o, NULL), 0);
        ck_assert(run_until(event, &o.calls, 1, 10 * USEC_PER_SEC));
        ck_assert_int_eq(o.status, 200);
        echo = json_loads(o.body, 0, NULL);
        ck_assert_ptr_nonnull(echo);
        ck_assert_str_eq(json_string_value(json_object_get(echo, "method")), "GET");
        ck_assert_str_eq(json_string_value(json_object_get(echo, "path")), "/echo?api-version=2018-02-01&resource=x");
        ck_assert_str_eq(json_string_value(json_object_get(echo, "body")), "");
        ck_assert_ptr_null(json_header(echo, "content-type"));
        ck_assert_str_eq(json_header(echo, "metadata"), "true");
        ck_assert_str_eq(json_header(echo, "x-ms-lib-capability"), "retry-after, h429");
        ck_assert_str_eq(json_header(echo, "authorization"), "c2VjcmV0LWtleQ");
        json_decref(echo);
        outcome_clear(&o);

        opts.secret_header_name = NULL;
        ck_assert_int_eq(http_get(client, challenge, &opts, on_done, &o, NULL), 0);
        ck_assert(run_until(event, &o.calls, 1, 10 * USEC_PER_SEC));
        ck_assert_int_eq(o.status, 401);
        ck_assert_str_eq(o.www_authenticate, "Basic realm=/var/opt/k.key");
        outcome_clear(&o);

        /* a header that would split the request is refused */
        extra_bad[0] = "Metadata: true\r\nX-Evil: 1";
        opts.headers = extra_bad;
        opts.n_headers = 1;
        ck_assert_int_eq(http_get(client, url, &opts, on_done, &o, NULL), -EINVAL);
}
END_TEST

START_TEST(test_proxy_bypass_decision) {
        ck_assert(http_url_bypasses_proxy("http://169.254.169.254/metadata/identity/oauth2/token", true));
        ck_assert(!http_url_bypasses_proxy("http://169.254.169.254/metadata/identity/oauth2/token", false));
        ck_assert(!http_url_bypasses_proxy("https://login.microsoftonline.com/t/oauth2/v2.0/token", false));
        ck_assert(http_url_bypasses_proxy("http://127.0.0.1:40342/metadata/identity/oauth2/token", false));
        ck_assert(http_url_bypasses_proxy("https://127.5.6.7/x", false));
        ck_assert(http_url_bypasses_proxy("http://localhost:8081/msi/token?x=1", false));
        ck_assert(http_url_bypasses_proxy("http://LOCALHOST", false));
        ck_assert(http_url_bypasses_proxy("http://a.localhost/", false));
        ck_assert(http_url_bypasses_proxy("https://[::1]:8443/token", false));
        ck_assert(http_url_bypasses_proxy("https://[::ffff:127.0.0.1]/", false));
        ck_assert(http_url_bypasses_proxy("https://user:pw@127.0.0.1/", false));
        /* a host that only starts or ends like loopback is not loopback */
        ck_assert(!http_url_bypasses_proxy("https://127.0.0.1.evil.example/", false));
        ck_assert(!http_url_bypasses_proxy("https://localhost.evil.example/", false));
        ck_assert(!http_url_bypasses_proxy("https://evil.example/?u=http://127.0.0.1/", false));
        ck_assert(!http_url_bypasses_proxy("https://127.0.0.1@evil.example/", false));
        ck_assert(!http_url_bypasses_proxy("https://[::2]/", false));
        ck_assert(!http_url_bypasses_proxy("https://128.0.0.1/", false));
        ck_assert(!http_url_bypasses_proxy("no url", false));
        ck_assert(!http_url_bypasses_proxy(NULL, false));
}
END_TEST

/* With every proxy variable pointing at nothing, loopback is still reached directly. */
START_TEST(test_loopback_never_through_proxy) {
        _cleanup_free_ char *url = url_of(&server_a, "/echo");
        HttpOptions opts = { .ca_file = server_a.ca };
        Outcome o = {};

        ck_assert_int_eq(setenv("http_proxy", "http://u:p@127.0.0.1:9", 1), 0);
        ck_assert_int_eq(setenv("https_proxy", "http://u:p@127.0.0.1:9", 1), 0);
        ck_assert_int_eq(setenv("ALL_PROXY", "http://u:p@127.0.0.1:9", 1), 0);
        ck_assert_int_eq(http_get(client, url, &opts, on_done, &o, NULL), 0);
        ck_assert(run_until(event, &o.calls, 1, 10 * USEC_PER_SEC));
        ck_assert_int_eq(o.status, 200);
        outcome_clear(&o);
        unsetenv("http_proxy");
        unsetenv("https_proxy");
        unsetenv("ALL_PROXY");
}
END_TEST

START_TEST(test_error_status_and_retry_after) {
        _cleanup_free_ char *u400 = url_of(&server_a, "/status/400"), *u429 = url_of(&server_a, "/retry-after/7"),
                            *udate = url_of(&server_a, "/retry-after/Wed%2C%2021%20Oct%202015%2007%3A28%3A00%20GMT"),
                            *uredir = url_of(&server_a, "/redirect");
        HttpOptions opts = { .ca_file = server_a.ca };
        Outcome o = {};

        post_and_wait(u400, &opts, &o);
        ck_assert_int_eq(o.result, 0); /* an HTTP error is an answer, not a transport failure */
        ck_assert_int_eq(o.status, 400);
        ck_assert_ptr_nonnull(strstr(o.body, "\"invalid_grant\""));
        ck_assert_ptr_null(o.retry_after);
        outcome_clear(&o);

        post_and_wait(u429, &opts, &o);
        ck_assert_int_eq(o.result, 0);
        ck_assert_int_eq(o.status, 429);
        ck_assert_str_eq(o.retry_after, "7");
        outcome_clear(&o);

        post_and_wait(udate, &opts, &o);
        ck_assert_str_eq(o.retry_after, "Wed, 21 Oct 2015 07:28:00 GMT");
        outcome_clear(&o);

        /* Redirects are not followed. */
        post_and_wait(uredir, &opts, &o);
        ck_assert_int_eq(o.result, 0);
        ck_assert_int_eq(o.status, 302);
        outcome_clear(&o);
}
END_TEST

START_TEST(test_hang_does_not_block_others) {
        _cleanup_free_ char *uhang = url_of(&server_a, "/hang"), *uecho = url_of(&server_b, "/echo");
        _cleanup_secret_ Secret *body = form("a=b");
        HttpOptions ohang = { .ca_file = server_a.ca, .timeout = 1500 * USEC_PER_MSEC };
        HttpOptions oecho = { .ca_file = server_b.ca, .timeout = 10 * USEC_PER_SEC };
        Outcome hang = {}, echo = {};
        usec_t t0;

        t0 = now_monotonic();
        ck_assert_int_eq(http_post_form(client, uhang, body, &ohang, on_done, &hang, NULL), 0);
        ck_assert_int_eq(http_post_form(client, uecho, body, &oecho, on_done, &echo, NULL), 0);
        ck_assert(run_until(event, &total_calls, 2, 10 * USEC_PER_SEC));

        ck_assert_int_eq(echo.result, 0);
        ck_assert_int_eq(echo.status, 200);
        ck_assert_int_eq(hang.result, -ETIMEDOUT);
        ck_assert_ptr_nonnull(hang.error);
        /* The second exchange finished long before the first one's timeout... */
        ck_assert_msg(echo.done_at - t0 < 700 * USEC_PER_MSEC, "echo took %llu ms",
                      (unsigned long long) ((echo.done_at - t0) / USEC_PER_MSEC));
        /* ...and the hung one ended at its timeout, not much later. */
        ck_assert_msg(hang.done_at - t0 >= 1450 * USEC_PER_MSEC && hang.done_at - t0 < 2500 * USEC_PER_MSEC,
                      "hang ended after %llu ms", (unsigned long long) ((hang.done_at - t0) / USEC_PER_MSEC));
        outcome_clear(&hang);
        outcome_clear(&echo);
}
END_TEST

static int listen_loopback(int backlog, int *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        if (backlog >= 0)
                ck_assert_int_eq(listen(fd, backlog), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

START_TEST(test_connect_timeout) {
        HttpOptions opts = { .ca_file = server_a.ca,
                             .connect_timeout = 500 * USEC_PER_MSEC,
                             .timeout = 10 * USEC_PER_SEC };
        char url[64];
        Outcome o = {};
        usec_t t0;
        int port, fd;

        /* The kernel completes the TCP handshake, nobody ever answers the TLS hello. */
        fd = listen_loopback(8, &port);
        snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
        t0 = now_monotonic();
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -ETIMEDOUT);
        ck_assert_uint_lt(o.done_at - t0, 2 * USEC_PER_SEC);
        ck_assert_uint_ge(o.done_at - t0, 450 * USEC_PER_MSEC);
        outcome_clear(&o);
        close(fd);
}
END_TEST

START_TEST(test_oversized) {
        _cleanup_free_ char *usized = url_of(&server_a, "/huge/2000000"),
                            *uunsized = url_of(&server_a, "/huge-unsized/2000000"),
                            *uexact = url_of(&server_a, "/huge/100000"),
                            *uexact_unsized = url_of(&server_a, "/huge-unsized/100000");
        HttpOptions opts = { .ca_file = server_a.ca, .max_body = 100000 };
        Outcome o = {};

        post_and_wait(usized, &opts, &o); /* refused on its Content-Length */
        ck_assert_int_eq(o.result, -EFBIG);
        ck_assert_ptr_nonnull(strstr(o.error, "100000"));
        outcome_clear(&o);

        post_and_wait(uunsized, &opts, &o); /* refused by the write callback */
        ck_assert_int_eq(o.result, -EFBIG);
        ck_assert_uint_le(o.body_len, 100000);
        outcome_clear(&o);

        post_and_wait(uexact, &opts, &o); /* the cap itself is allowed */
        ck_assert_int_eq(o.result, 0);
        ck_assert_uint_eq(o.body_len, 100000);
        outcome_clear(&o);

        post_and_wait(uexact_unsized, &opts, &o);
        ck_assert_int_eq(o.result, 0);
        ck_assert_uint_eq(o.body_len, 100000);
        outcome_clear(&o);

        opts.max_body = 0; /* default cap */
        post_and_wait(usized, &opts, &o);
        ck_assert_int_eq(o.result, -EFBIG);
        outcome_clear(&o);
}
END_TEST

START_TEST(test_tls_trust) {
        _cleanup_free_ char *url = url_of(&server_a, "/echo");
        HttpOptions opts = {};
        Outcome o = {};

        post_and_wait(url, &opts, &o); /* the throwaway CA is not in the system store */
        ck_assert_int_eq(o.result, -EPROTO);
        ck_assert_ptr_nonnull(o.error);
        ck_assert_int_eq(o.status, 0);
        outcome_clear(&o);

        opts.ca_file = server_b.ca; /* another CA */
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -EPROTO);
        outcome_clear(&o);

        opts.ca_file = "/nonexistent/ca.pem";
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -EPROTO);
        outcome_clear(&o);

        opts.ca_file = server_a.ca;
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, 0);
        ck_assert_int_eq(o.status, 200);
        outcome_clear(&o);
}
END_TEST

/* A ca_file that changes (a rotated proxy CA) counts from the next connection on, in the same
 * client: libcurl must not keep serving a cached trust store. */
START_TEST(test_ca_file_change_seen) {
        _cleanup_free_ char *url = url_of(&server_a, "/echo"), *ca = NULL, *pem_a = NULL, *pem_b = NULL;
        _cleanup_free_ char *tmp = testlib_mkdtemp();
        HttpOptions opts = {};
        Outcome o = {};
        size_t len_a, len_b;

        ck_assert_int_eq(read_file_full(server_a.ca, 65536, &pem_a, &len_a), 0);
        ck_assert_int_eq(read_file_full(server_b.ca, 65536, &pem_b, &len_b), 0);
        ck_assert_int_ge(asprintf(&ca, "%s/ca.pem", tmp), 0);
        opts.ca_file = ca;

        testlib_write_file(ca, pem_b, len_b);
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -EPROTO);
        outcome_clear(&o);

        testlib_write_file(ca, pem_a, len_a);
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, 0);
        outcome_clear(&o);
        testlib_rm_rf(tmp);
}
END_TEST

static int post_once(const char *url, const char *ca_file) {
        HttpOptions opts = { .ca_file = ca_file };
        Outcome o = {};
        int r;

        /* A fresh client each time: nothing cached from the previous trust store. */
        client = http_client_free(client);
        ck_assert_int_eq(http_client_new(event, &client), 0);
        post_and_wait(url, &opts, &o);
        r = o.result;
        outcome_clear(&o);
        return r;
}

/* ca_file adds to the system trust, it does not replace it: with server B's CA installed in the
 * system directory (/etc/ssl/certs, hashed) and ca_file naming A's CA, B must still verify. */
START_TEST(test_system_trust_plus_ca_file) {
        _cleanup_free_ char *url = url_of(&server_b, "/echo"), *hash_file = NULL, *hash = NULL;
        char link[4096] = {};
        int without, with_ca_a, system_only;
        size_t len;

        if (geteuid() != 0 || access("/etc/ssl/certs", W_OK) < 0) {
                fprintf(stderr, "test_system_trust_plus_ca_file: skipped (needs root)\n");
                return;
        }
        ck_assert_int_ge(asprintf(&hash_file, "%s/ca.hash", server_b.dir), 0);
        ck_assert_int_eq(read_file_full(hash_file, 64, &hash, &len), 0);
        hash[strcspn(hash, "\n")] = 0;

        ck_assert_int_eq(post_once(url, server_a.ca), -EPROTO); /* control: B not trusted yet */

        for (int i = 0; i < 10; i++) {
                snprintf(link, sizeof link, "/etc/ssl/certs/%s.%d", hash, i);
                if (symlink(server_b.ca, link) == 0)
                        break;
                ck_assert_int_eq(errno, EEXIST);
                link[0] = 0;
        }
        ck_assert(link[0]);
        /* Assert only after the link is gone: a failed assertion exits at once. */
        with_ca_a = post_once(url, server_a.ca);
        system_only = post_once(url, NULL);
        (void) unlink(link);
        without = post_once(url, server_a.ca);

        ck_assert_int_eq(with_ca_a, 0);
        ck_assert_int_eq(system_only, 0);
        ck_assert_int_eq(without, -EPROTO);
}
END_TEST

START_TEST(test_transport_failures) {
        _cleanup_free_ char *ureset = url_of(&server_a, "/reset"), *utrunc = url_of(&server_a, "/truncated"),
                            *uclose = url_of(&server_a, "/close");
        HttpOptions opts = { .ca_file = server_a.ca };
        char url[64];
        Outcome o = {};
        usec_t t0;
        int port, fd;

        /* Bound but not listening: the kernel refuses at once. */
        fd = listen_loopback(-1, &port);
        snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
        t0 = now_monotonic();
        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -ECONNREFUSED);
        ck_assert_ptr_nonnull(o.error);
        ck_assert_uint_lt(o.done_at - t0, USEC_PER_SEC);
        outcome_clear(&o);
        close(fd);

        post_and_wait(ureset, &opts, &o);
        ck_assert_int_eq(o.result, -ECONNRESET);
        outcome_clear(&o);

        post_and_wait(utrunc, &opts, &o);
        ck_assert_int_eq(o.result, -EPIPE);
        outcome_clear(&o);

        post_and_wait(uclose, &opts, &o);
        ck_assert_int_eq(o.result, -ECONNRESET);
        outcome_clear(&o);
}
END_TEST

START_TEST(test_protocols) {
        Outcome o = {};

        post_and_wait("file:///etc/passwd", NULL, &o);
        ck_assert_int_eq(o.result, -EPROTONOSUPPORT);
        ck_assert_ptr_null(strstr(o.body, "root:"));
        outcome_clear(&o);

        post_and_wait("ftp://127.0.0.1/x", NULL, &o);
        ck_assert_int_eq(o.result, -EPROTONOSUPPORT);
        outcome_clear(&o);
}
END_TEST

START_TEST(test_bad_arguments) {
        _cleanup_secret_ Secret *body = form("a=b");
        HttpOptions opts = { .request_id = "x\r\nInjected: yes" };
        Outcome o = {};

        ck_assert_int_eq(http_post_form(NULL, "https://127.0.0.1/", body, NULL, on_done, &o, NULL), -EINVAL);
        ck_assert_int_eq(http_post_form(client, NULL, body, NULL, on_done, &o, NULL), -EINVAL);
        ck_assert_int_eq(http_post_form(client, "https://127.0.0.1/", body, NULL, NULL, &o, NULL), -EINVAL);
        ck_assert_int_eq(http_post_form(client, "https://127.0.0.1/", body, &opts, on_done, &o, NULL), -EINVAL);
        ck_assert_uint_eq(http_client_active(client), 0);
        ck_assert_int_eq(o.calls, 0);
}
END_TEST

START_TEST(test_connection_reuse) {
        _cleanup_free_ char *ua = url_of(&server_a, "/echo"), *ub = url_of(&server_b, "/echo");
        HttpOptions oa = { .ca_file = server_a.ca }, ob = { .ca_file = server_b.ca };
        json_int_t conns[3];
        Outcome o = {};

        for (int i = 0; i < 3; i++) {
                json_t *echo;

                post_and_wait(ua, &oa, &o);
                ck_assert_int_eq(o.result, 0);
                echo = json_loads(o.body, 0, NULL);
                ck_assert_ptr_nonnull(echo);
                conns[i] = json_integer_value(json_object_get(echo, "conn"));
                json_decref(echo);
                outcome_clear(&o);
                if (i == 1) { /* another host in between does not evict the first one */
                        post_and_wait(ub, &ob, &o);
                        ck_assert_int_eq(o.result, 0);
                        outcome_clear(&o);
                }
        }
        ck_assert_int_gt(conns[0], 0);
        ck_assert_int_eq(conns[1], conns[0]);
        ck_assert_int_eq(conns[2], conns[0]);
}
END_TEST

START_TEST(test_cancel_in_flight) {
        _cleanup_free_ char *uhang = url_of(&server_a, "/hang"), *uecho = url_of(&server_a, "/echo");
        _cleanup_secret_ Secret *body = form("a=b");
        HttpOptions opts = { .ca_file = server_a.ca };
        Outcome hang = {}, echo = {};
        HttpRequest *req = NULL;

        ck_assert_int_eq(http_post_form(client, uhang, body, &opts, on_done, &hang, &req), 0);
        /* Another exchange end to end: the hung one is now connected and waiting. */
        post_and_wait(uecho, &opts, &echo);
        ck_assert_int_eq(echo.result, 0);
        ck_assert_uint_eq(http_client_active(client), 1);

        http_request_cancel(req);
        http_request_cancel(NULL);
        ck_assert_uint_eq(http_client_active(client), 0);
        outcome_clear(&echo);
        post_and_wait(uecho, &opts, &echo);
        ck_assert_int_eq(echo.result, 0);
        ck_assert_int_eq(hang.calls, 0);
        outcome_clear(&echo);

        /* Freeing the client cancels what is left, without callbacks (ASan: nothing leaks). */
        ck_assert_int_eq(http_post_form(client, uhang, body, &opts, on_done, &hang, NULL), 0);
        ck_assert_int_eq(http_post_form(client, uecho, body, &opts, on_done, &echo, NULL), 0);
        ck_assert_int_ge(sd_event_run(event, 100 * USEC_PER_MSEC), 0);
        client = http_client_free(client);
        ck_assert_int_eq(hang.calls, 0);
}
END_TEST

START_TEST(test_callbacks_cancel_and_free) {
        _cleanup_free_ char *uhang = url_of(&server_a, "/hang"), *uecho = url_of(&server_a, "/echo"),
                            *uecho_b = url_of(&server_b, "/echo");
        _cleanup_secret_ Secret *body = form("a=b");
        HttpOptions opts = { .ca_file = server_a.ca }, ob = { .ca_file = server_b.ca };
        Outcome first = {}, second = {}, hang = {}, last = {};
        HttpRequest *hreq = NULL, *sreq = NULL;

        /* A callback cancels a request in flight. */
        ck_assert_int_eq(http_post_form(client, uhang, body, &opts, on_done, &hang, &hreq), 0);
        first.cancel_in_callback = hreq;
        post_and_wait(uecho, &opts, &first);
        ck_assert_int_eq(first.result, 0);
        ck_assert_uint_eq(http_client_active(client), 0);
        outcome_clear(&first);

        /* Two answers that may complete together: whichever calls back first cancels the other. */
        for (int i = 0; i < 5; i++) {
                HttpRequest *freq = NULL;

                ck_assert_int_eq(http_post_form(client, uecho, body, &opts, on_done, &second, &sreq), 0);
                ck_assert_int_eq(http_post_form(client, uecho_b, body, &ob, on_done, &first, &freq), 0);
                first.cancel_in_callback = sreq;
                second.cancel_in_callback = freq;
                ck_assert(run_until(event, &total_calls, total_calls + 1, 10 * USEC_PER_SEC));
                /* Let whatever was queued run; the cancelled one must never call back. */
                post_and_wait(uecho, &opts, &last);
                ck_assert_int_eq(first.calls + second.calls, 1);
                ck_assert_uint_eq(http_client_active(client), 0);
                outcome_clear(&first);
                outcome_clear(&second);
                outcome_clear(&last);
        }

        /* Cancelling itself from its own callback is a no-op. */
        first.cancel_self = true;
        post_and_wait(uecho, &opts, &first);
        ck_assert_int_eq(first.result, 0);
        outcome_clear(&first);

        /* A callback frees the whole client while another request hangs. */
        ck_assert_int_eq(http_post_form(client, uhang, body, &opts, on_done, &hang, NULL), 0);
        first.free_in_callback = &client;
        post_and_wait(uecho, &opts, &first);
        ck_assert_ptr_null(client);
        for (int i = 0; i < 5; i++)
                ck_assert_int_ge(sd_event_run(event, 20 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(hang.calls, 0);
        outcome_clear(&first);
}
END_TEST

/* Proxies come from the environment, as libcurl reads them, and no_proxy is honoured. */
START_TEST(test_proxy_environment) {
        /* A remote host goes through the proxy the environment names (the CONNECT carries its
         * name; it is never resolved here); loopback never does (test_loopback_never_through_proxy). */
        const char *url = "https://login.example.invalid/echo";
        HttpOptions opts = { .ca_file = server_a.ca, .connect_timeout = 700 * USEC_PER_MSEC };
        char proxy[64], buf[256] = {};
        Outcome o = {};
        int port, fd, conn;

        fd = listen_loopback(8, &port); /* a "proxy" that accepts and never answers */
        snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
        ck_assert_int_eq(setenv("https_proxy", proxy, 1), 0);

        post_and_wait(url, &opts, &o);
        ck_assert_int_eq(o.result, -ETIMEDOUT);
        outcome_clear(&o);
        conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ck_assert_int_ge(conn, 0);
        ck_assert_int_gt(read(conn, buf, sizeof buf - 1), 0);
        ck_assert_msg(strncmp(buf, "CONNECT login.example.invalid:443", 33) == 0, "proxy saw: %s", buf);
        close(conn);

        unsetenv("https_proxy");
        close(fd);
}
END_TEST

static Suite *http_suite(void) {
        Suite *s = suite_create("http");
        TCase *tc = tcase_create("loopback");

        tcase_set_timeout(tc, 60);
        tcase_add_unchecked_fixture(tc, servers_setup, servers_teardown);
        tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
        tcase_add_test(tc, test_post_echo);
        tcase_add_test(tc, test_get_with_headers);
        tcase_add_test(tc, test_proxy_bypass_decision);
        tcase_add_test(tc, test_loopback_never_through_proxy);
        tcase_add_test(tc, test_error_status_and_retry_after);
        tcase_add_test(tc, test_hang_does_not_block_others);
        tcase_add_test(tc, test_connect_timeout);
        tcase_add_test(tc, test_oversized);
        tcase_add_test(tc, test_tls_trust);
        tcase_add_test(tc, test_ca_file_change_seen);
        tcase_add_test(tc, test_system_trust_plus_ca_file);
        tcase_add_test(tc, test_transport_failures);
        tcase_add_test(tc, test_protocols);
        tcase_add_test(tc, test_bad_arguments);
        tcase_add_test(tc, test_connection_reuse);
        tcase_add_test(tc, test_cancel_in_flight);
        tcase_add_test(tc, test_callbacks_cancel_and_free);
        tcase_add_test(tc, test_proxy_environment);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        static const char *const proxy_vars[] = {
                "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
        };

        /* The tests talk to loopback only: a proxy from the caller's environment must not interfere. */
        for (size_t i = 0; i < ELEMENTSOF(proxy_vars); i++)
                unsetenv(proxy_vars[i]);
        signal(SIGPIPE, SIG_IGN);
        server_a.stdin_fd = server_b.stdin_fd = -1;
        return testlib_run(http_suite());
}
