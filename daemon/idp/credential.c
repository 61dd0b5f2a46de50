/* The unattended identities: read the credential, make one request, read one token answer.
 * A token source (token-source.h); the strategy per kind is the request it makes. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "idp/assertion.h"
#include "idp/credential.h"
#include "idp/credfile.h"
#include "idp/token-source.h"
#include "loop/worker.h"

#define ARC_KEY_MAX 4096                       /* MSAL's cap on Arc's key file */
#define MSI_HALF_LIFE_FROM (2 * USEC_PER_HOUR) /* MSAL: refresh at half life from 2 h */

struct Credential {
        const TokenSourceContext *ctx;
        const ProfileConfig *cfg; /* the owner's; replaced on reload (credential_set_config) */
        const char *name;
        AuthKind auth; /* what the request in flight was made as, whatever a reload says */
        MsiKind msi_kind;
        const CredentialCallbacks *cb;

        HttpRequest *req;
        sd_event_source *defer; /* reports a failure found before any request */
        int deferred_result;
        char *deferred_error;
        usec_t sent;
        bool arc_challenged;   /* Arc: the key file's content has been presented once */
        Worker *reader;        /* reads the credential files off the loop: a hung file system stalls nothing */
        unsigned imds_retries; /* IMDS: answers 429/5xx retried within this acquisition */
        sd_event_source *imds_retry;
};

static void credential_done(Credential *c, int result, AadToken *t, usec_t retry_after, const char *error) {
        c->cb->on_done(result, t, c->sent, retry_after, error, c->cb->userdata);
}

static int on_defer(sd_event_source *s, void *userdata) {
        Credential *c = userdata;
        _cleanup_free_ char *error = TAKE_PTR(c->deferred_error);

        credential_done(c, c->deferred_result, NULL, 0, error);
        return 0;
}

/* A failure before the request: reported from the loop, like every other end. */
static _printf_(3, 4) int fail_later(Credential *c, int result, const char *format, ...) {
        va_list ap;
        int r;

        free(c->deferred_error);
        va_start(ap, format);
        if (vasprintf(&c->deferred_error, format, ap) < 0)
                c->deferred_error = NULL;
        va_end(ap);
        c->deferred_result = result;
        r = sd_event_add_defer(c->ctx->event, &c->defer, on_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
        return r;
}

/* Which failures of a credential file a retry may cure: a missing federated token (the kubelet
 * writes it late), I/O. A file others may read, or one that is no credential, needs a person. */
static int file_result(int r) {
        return r == -EPERM || r == -EBADFD || r == -EFBIG || r == -ENODATA || r == -EACCES ? -EBADR : -EIO;
}

static const char *file_problem(int r) {
        switch (r) {
        case -EPERM:
                return "may be read by others than its owner (chmod 600 it)";
        case -EBADFD:
                return "is not a regular file";
        case -EFBIG:
                return "is too large for a credential";
        case -ENODATA:
                return "is empty";
        default:
                return strerror(-r);
        }
}

static const char *certificate_problem(int r) {
        switch (r) {
        case -EBADMSG:
                return "holds no PEM certificate";
        case -ENOKEY:
                return "holds no private key, or the password is wrong";
        case -EKEYREJECTED:
                return "holds a key that is not its certificate's";
        case -EPROTONOSUPPORT:
                return "holds a key that is not RSA";
        default:
                return strerror(-r);
        }
}

/* ---- the credential files, read in a worker thread ------------------------------------- */

typedef struct CredFile {
        char *path;
        size_t max;
        bool private_only, trim;
        Secret *secret; /* read */
        int result;
} CredFile;

typedef struct CredFileJob {
        void (*then)(Credential *c, struct CredFileJob *j); /* on the loop, with the files read */
        CredFile files[2];
        size_t n;
} CredFileJob;

static void credfile_job_free(void *p) {
        CredFileJob *j = p;

        if (!j)
                return;
        for (size_t i = 0; i < j->n; i++) {
                free(j->files[i].path);
                secret_free(j->files[i].secret);
        }
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CredFileJob *, credfile_job_free);

static void credfile_job_run(void *p) {
        CredFileJob *j = p;

        for (size_t i = 0; i < j->n; i++) {
                CredFile *f = &j->files[i];
                f->result = credfile_read(f->path, f->max, f->private_only, f->trim, &f->secret);
        }
}

static void on_files_read(Worker *w, void *p, void *userdata) {
        _cleanup_(credfile_job_freep) CredFileJob *j = p;

        j->then(userdata, j);
}

static int credfile_job_add(CredFileJob *j, const char *path, size_t max, bool private_only, bool trim) {
        CredFile *f = &j->files[j->n];

        assert(j->n < ELEMENTSOF(j->files));
        f->path = strdup(path);
        if (!f->path)
                return -ENOMEM;
        f->max = max;
        f->private_only = private_only;
        f->trim = trim;
        j->n++;
        return 0;
}

/* Read the files of j in the credential's worker; then(c, j) runs on the loop with them. */
static int read_files(Credential *c, CredFileJob *j) {
        int r;

        if (!c->reader) {
                r = worker_new(c->ctx->event, "credential", credfile_job_run, on_files_read, credfile_job_free, c,
                               &c->reader);
                if (r < 0) {
                        credfile_job_free(j);
                        return r;
                }
        }
        return worker_submit(c->reader, j);
}

/* A failure found on the loop after the files were read: the end of this acquisition. */
static _printf_(3, 4) void fail_now(Credential *c, int result, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&what, format, ap) < 0)
                what = NULL;
        va_end(ap);
        credential_done(c, result, NULL, 0, what ?: "out of memory");
}

/* ---- the answer ---------------------------------------------------------------------------- */

static void on_token_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata);

static int msi_send(Credential *c, const Secret *arc_key);
static void arc_with_key(Credential *c, CredFileJob *j);

static int on_imds_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Credential *c = userdata;
        int r;

        r = msi_send(c, NULL);
        if (r < 0) {
                char what[160];
                snprintf(what, sizeof what, "cannot ask the managed identity endpoint for a token: %s", strerror(-r));
                credential_done(c, -EIO, NULL, 0, what);
        }
        return 0;
}

/* An IMDS hiccup (429, 5xx) is retried within the acquisition, so that a forced refresh or a
 * check rides through it; the profile's own schedule retries anything longer. */
static bool imds_retry_later(Credential *c, long status, usec_t retry_after) {
        usec_t delay;

        if (c->msi_kind != MSI_IMDS || !(status == 429 || status >= 500))
                return false;
        delay = credential_imds_retry_delay(c->imds_retries, retry_after);
        if (delay == USEC_INFINITY)
                return false;
        c->imds_retry = sd_event_source_disable_unref(c->imds_retry);
        if (sd_event_add_time_relative(c->ctx->event, &c->imds_retry, CLOCK_MONOTONIC, delay, 0, on_imds_retry, c) < 0)
                return false;
        c->imds_retries++;
        log_debug("Profile %s: the managed identity endpoint answered HTTP %ld; asking again in %llu ms.", c->name,
                  status, (unsigned long long) (delay / USEC_PER_MSEC));
        return true;
}

usec_t credential_imds_retry_delay(unsigned retried, usec_t retry_after) {
        usec_t delay;

        if (retried >= CREDENTIAL_IMDS_RETRIES)
                return USEC_INFINITY;
        delay = CREDENTIAL_IMDS_BACKOFF << retried;
        if (retry_after > CREDENTIAL_IMDS_RETRY_AFTER_MAX)
                return USEC_INFINITY; /* a longer wait is the schedule's, not this call's */
        return MAX(delay, retry_after);
}

static void on_token_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        Credential *c = userdata;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        usec_t retry_after = 0;
        char words[512], what[640];
        bool msi = c->auth == AUTH_MANAGED_IDENTITY;
        AadOutcome o;

        c->req = NULL;
        if (result < 0) {
                snprintf(what, sizeof what, "cannot reach %s: %s",
                         msi ? "the managed identity endpoint" : c->cfg->authority_host,
                         resp && resp->error ? resp->error : strerror(-result));
                credential_done(c, -EIO, NULL, 0, what);
                return;
        }

        if (msi && c->msi_kind == MSI_ARC && resp->status == 401 && !c->arc_challenged) {
                /* Arc: prove local access by reading the key file its 401 names. */
                _cleanup_(credfile_job_freep) CredFileJob *j = NULL;
                _cleanup_free_ char *path = NULL;
                int r;

                r = aad_arc_challenge_path(resp->www_authenticate, c->cfg->arc_key_dir ?: AKS_ARC_KEY_DIR, &path);
                if (r < 0) {
                        credential_done(c, -EBADR, NULL, 0,
                                        "Azure Arc's challenge names no key file in its token directory");
                        return;
                }
                j = calloc(1, sizeof *j);
                if (j) {
                        j->then = arc_with_key;
                        r = credfile_job_add(j, path, ARC_KEY_MAX, false, true);
                }
                r = j ? (r < 0 ? r : read_files(c, TAKE_PTR(j))) : -ENOMEM;
                if (r < 0) {
                        snprintf(what, sizeof what, "cannot read Azure Arc's key file: %s", strerror(-r));
                        credential_done(c, -EIO, NULL, 0, what);
                }
                return;
        }

        if (msi)
                o = aad_parse_msi_answer(resp->status, resp->body, resp->body_len, now_realtime(), &t, &e);
        else
                o = aad_parse_token_answer(resp->status, resp->body, resp->body_len, &t, &e);
        if (resp->retry_after)
                (void) aad_parse_retry_after(resp->retry_after, (time_t) (now_realtime() / USEC_PER_SEC), &retry_after);

        switch (o) {
        case AAD_OK:
                /* MSAL renews a managed identity's long-lived token at half its life. */
                if (msi && t.expires_in >= MSI_HALF_LIFE_FROM && (t.refresh_in == 0 || t.refresh_in > t.expires_in / 2))
                        t.refresh_in = t.expires_in / 2;
                t.refresh_token = secret_free(t.refresh_token); /* none is expected; none is kept */
                credential_done(c, 0, &t, 0, NULL);
                return;
        case AAD_TRANSIENT:
                if (msi && imds_retry_later(c, resp->status, retry_after))
                        return;
                snprintf(what, sizeof what, "HTTP %ld: %s", resp->status,
                         token_source_error_words(&e, words, sizeof words));
                credential_done(c, -EIO, NULL, retry_after, what);
                return;
        default:
                /* invalid_client (a wrong secret, an unknown certificate, an expired assertion),
                 * unauthorized_client, invalid_scope, a federated identity that does not match:
                 * retrying the same credential cannot help. */
                snprintf(what, sizeof what, "the credential was rejected: %s",
                         token_source_error_words(&e, words, sizeof words));
                credential_done(c, -EBADR, NULL, 0, what);
                return;
        }
}

/* ---- the strategies ------------------------------------------------------------------------- */

static int post_body(Credential *c, const Secret *body) {
        _cleanup_free_ char *url = aad_token_url(c->cfg);
        char request_id[37];
        int r;

        if (!url)
                return -ENOMEM;
        c->sent = now_realtime();
        r = token_source_post(c->ctx, c->cfg, url, body, on_token_done, c, &c->req, request_id);
        if (r >= 0)
                log_debug("Profile %s: asking for a token with the %s credential (request id %s).", c->name,
                          auth_kind_to_string(c->cfg->auth), request_id);
        return r;
}

/* After the request is built, a failure to send it is the end of this acquisition. */
static void post_or_fail(Credential *c, const Secret *body) {
        int r = post_body(c, body);

        if (r < 0)
                fail_now(c, -EIO, "cannot ask for a token: %s", strerror(-r));
}

static void client_secret_with_file(Credential *c, CredFileJob *j) {
        _cleanup_secret_ Secret *body = NULL;
        CredFile *f = &j->files[0];
        int r;

        if (f->result < 0)
                return fail_now(c, file_result(f->result), "client_secret_file %s %s", f->path,
                                file_problem(f->result));
        r = aad_client_secret_body(c->cfg, f->secret, &body);
        if (r < 0)
                return fail_now(c, -EIO, "cannot build the token request: %s", strerror(-r));
        post_or_fail(c, body);
}

static int client_secret_send(Credential *c) {
        _cleanup_(credfile_job_freep) CredFileJob *j = calloc(1, sizeof *j);
        int r;

        if (!j)
                return -ENOMEM;
        j->then = client_secret_with_file;
        r = credfile_job_add(j, c->cfg->client_secret_file, CREDFILE_MAX, true, true);
        if (r < 0)
                return r;
        return read_files(c, TAKE_PTR(j));
}

static void client_certificate_with_files(Credential *c, CredFileJob *j) {
        _cleanup_secret_ Secret *assertion = NULL, *body = NULL;
        _cleanup_(client_certificate_freep) ClientCertificate *cert = NULL;
        _cleanup_free_ char *audience = NULL;
        CredFile *pem = &j->files[j->n - 1], *password = j->n > 1 ? &j->files[0] : NULL;
        char jti[37];
        int r;

        if (password && password->result < 0)
                return fail_now(c, file_result(password->result), "client_certificate_password_file %s %s",
                                password->path, file_problem(password->result));
        if (pem->result < 0)
                return fail_now(c, file_result(pem->result), "client_certificate %s %s", pem->path,
                                file_problem(pem->result));
        r = client_certificate_load(pem->secret, password ? password->secret : NULL, &cert);
        if (r == -ENOMEM)
                return fail_now(c, -EIO, "cannot load the certificate: %s", strerror(-r));
        if (r < 0)
                return fail_now(c, -EBADR, "client_certificate %s %s", pem->path, certificate_problem(r));
        /* The key is needed for this one signature only: a fresh assertion per request, as the
         * identity provider accepts each jti once. */
        audience = aad_token_url(c->cfg);
        if (!audience)
                return fail_now(c, -EIO, "out of memory");
        r = client_assertion_build(cert, ASSERTION_PS256, c->cfg->client_id, audience, now_realtime(),
                                   uuid4_string(jti), &assertion);
        if (r < 0)
                return fail_now(c, -EIO, "cannot sign the client assertion: %s", strerror(-r));
        cert = client_certificate_free(cert);
        pem->secret = secret_free(pem->secret);
        r = aad_client_assertion_body(c->cfg, assertion, &body);
        if (r < 0)
                return fail_now(c, -EIO, "cannot build the token request: %s", strerror(-r));
        post_or_fail(c, body);
}

static int client_certificate_send(Credential *c) {
        _cleanup_(credfile_job_freep) CredFileJob *j = calloc(1, sizeof *j);
        int r = 0;

        if (!j)
                return -ENOMEM;
        j->then = client_certificate_with_files;
        if (c->cfg->client_certificate_password_file)
                r = credfile_job_add(j, c->cfg->client_certificate_password_file, CREDFILE_MAX, true, true);
        if (r >= 0)
                r = credfile_job_add(j, c->cfg->client_certificate, CREDFILE_MAX, true, false);
        if (r < 0)
                return r;
        return read_files(c, TAKE_PTR(j));
}

static void workload_identity_with_file(Credential *c, CredFileJob *j) {
        _cleanup_secret_ Secret *body = NULL;
        CredFile *f = &j->files[0];
        int r;

        if (f->result < 0)
                return fail_now(c, file_result(f->result), "federated_token_file %s %s", f->path,
                                file_problem(f->result));
        r = aad_client_assertion_body(c->cfg, f->secret, &body);
        if (r < 0)
                return fail_now(c, -EIO, "cannot build the token request: %s", strerror(-r));
        post_or_fail(c, body);
}

static int workload_identity_send(Credential *c) {
        _cleanup_(credfile_job_freep) CredFileJob *j = NULL;
        int r;

        if (!c->cfg->tenant || !c->cfg->client_id || !c->cfg->federated_token_file)
                return fail_later(
                        c, -EBADR,
                        "workload identity needs %s: the workload identity webhook sets it in the pod, or give %s in the profile",
                        !c->cfg->tenant      ? "AZURE_TENANT_ID"
                        : !c->cfg->client_id ? "AZURE_CLIENT_ID"
                                             : "AZURE_FEDERATED_TOKEN_FILE",
                        !c->cfg->tenant      ? "tenant"
                        : !c->cfg->client_id ? "client_id"
                                             : "federated_token_file");
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->then = workload_identity_with_file;
        /* Re-read every time: the kubelet rotates the projected token. */
        r = credfile_job_add(j, c->cfg->federated_token_file, CREDFILE_MAX, false, true);
        if (r < 0)
                return r;
        return read_files(c, TAKE_PTR(j));
}

static void arc_with_key(Credential *c, CredFileJob *j) {
        CredFile *f = &j->files[0];
        int r;

        if (f->result < 0)
                return fail_now(c, file_result(f->result),
                                "Azure Arc's key file %s: %s (the daemon's user must be in group himds)", f->path,
                                file_problem(f->result));
        c->arc_challenged = true;
        r = msi_send(c, f->secret);
        if (r < 0)
                fail_now(c, -EIO, "cannot ask Azure Arc for a token: %s", strerror(-r));
}

static int msi_send(Credential *c, const Secret *arc_key) {
        _cleanup_free_ char *url = aad_msi_url(c->cfg);
        _cleanup_secret_ Secret *basic = NULL;
        static const char *const metadata[] = { "Metadata: true" };
        char request_id[37];
        int r;

        if (!url)
                return -ENOMEM;
        c->sent = now_realtime();
        switch (c->msi_kind) {
        case MSI_APP_SERVICE:
                r = token_source_get(c->ctx, c->cfg, url, NULL, 0, "X-IDENTITY-HEADER", c->cfg->identity_header,
                                     on_token_done, c, &c->req, request_id);
                break;
        case MSI_ARC:
                if (arc_key) {
                        _cleanup_free_ char *v = NULL;
                        if (asprintf(&v, "Basic %s", secret_reveal(arc_key)) < 0)
                                return -ENOMEM;
                        basic = secret_new_string(v);
                        explicit_bzero(v, strlen(v));
                        if (!basic)
                                return -ENOMEM;
                }
                r = token_source_get(c->ctx, c->cfg, url, metadata, 1, basic ? "Authorization" : NULL, basic,
                                     on_token_done, c, &c->req, request_id);
                break;
        default:
                r = token_source_get(c->ctx, c->cfg, url, metadata, 1, NULL, NULL, on_token_done, c, &c->req,
                                     request_id);
        }
        if (r >= 0)
                log_debug("Profile %s: asking the managed identity endpoint for a token (request id %s).", c->name,
                          request_id);
        return r;
}

int credential_acquire(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                       const CredentialCallbacks *callbacks, Credential **ret) {
        _cleanup_(credential_freep) Credential *c = NULL;
        int r;

        if (!ctx || !cfg || !name || !callbacks || !ret || !auth_kind_is_unattended(cfg->auth))
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (Credential) {
                .ctx = ctx, .cfg = cfg, .name = name, .cb = callbacks, .auth = cfg->auth, .msi_kind = cfg->msi_kind
        };

        switch (cfg->auth) {
        case AUTH_CLIENT_SECRET:
                r = client_secret_send(c);
                break;
        case AUTH_CLIENT_CERTIFICATE:
                r = client_certificate_send(c);
                break;
        case AUTH_WORKLOAD_IDENTITY:
                r = workload_identity_send(c);
                break;
        case AUTH_MANAGED_IDENTITY:
                r = msi_send(c, NULL);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void credential_set_config(Credential *c, const ProfileConfig *cfg) {
        if (c)
                c->cfg = cfg;
}

Credential *credential_free(Credential *c) {
        if (!c)
                return NULL;
        http_request_cancel(c->req);
        sd_event_source_disable_unref(c->defer);
        sd_event_source_disable_unref(c->imds_retry);
        worker_free(c->reader); /* a read still hanging is left to its thread */
        free(c->deferred_error);
        free(c);
        return NULL;
}
