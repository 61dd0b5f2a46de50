/* auth = azurecli: `az account get-access-token` run as a child the loop watches (exit, both
 * pipes, a time limit); what it printed is read by azurecli-output.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/secret.h"
#include "base/util.h"
#include "idp/azurecli-output.h"
#include "idp/azurecli.h"

typedef struct Pipe {
        int fd;
        sd_event_source *source;
        char *buf; /* stdout may hold a token: wiped when freed */
        size_t len, cap;
        bool truncated;
} Pipe;

struct AzureCli {
        const TokenSourceContext *ctx;
        char *command; /* az_command, copied: a reload frees the configuration while az runs */
        const char *name;
        const AzureCliCallbacks *cb;

        pid_t pid;
        sd_event_source *child;
        sd_event_source *timeout;
        Pipe out, err;
        usec_t sent;
        bool timed_out;
};

static void pipe_close(Pipe *p) {
        p->source = sd_event_source_disable_unref(p->source);
        if (p->fd >= 0)
                (void) close(p->fd);
        p->fd = -1;
}

static void pipe_clear(Pipe *p) {
        pipe_close(p);
        erase_and_free(p->buf, p->cap);
        *p = (Pipe) { .fd = -1 };
}

/* Read what is there, without blocking; past the cap the rest is read and dropped. */
static void pipe_drain(Pipe *p) {
        char scratch[4096];

        while (p->fd >= 0) {
                ssize_t n;

                if (p->len + sizeof scratch > p->cap && p->cap < AZURECLI_OUTPUT_MAX + 1 &&
                    erase_realloc(&p->buf, &p->cap, p->len, MIN(MAX(p->cap * 2, 8192), AZURECLI_OUTPUT_MAX + 1)) < 0) {
                        p->truncated = true;
                        pipe_close(p);
                        return;
                }
                if (p->len + 1 < p->cap)
                        n = read(p->fd, p->buf + p->len, p->cap - p->len - 1);
                else {
                        n = read(p->fd, scratch, sizeof scratch);
                        if (n > 0)
                                p->truncated = true;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        pipe_close(p);
                        return;
                }
                if (p->len + 1 < p->cap)
                        p->len += (size_t) n;
        }
        explicit_bzero(scratch, sizeof scratch);
}

static int on_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        pipe_drain(userdata);
        return 0;
}

static char **strv_free(char **v) {
        for (char **i = v; i && *i; i++)
                free(*i);
        free(v);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

AzureCli *azurecli_free(AzureCli *a) {
        if (!a)
                return NULL;
        if (a->child) {
                /* Killed now and reaped by the loop when it has exited (on_child_exit() without
                 * a run): never a blocking wait. */
                (void) kill(-a->pid, SIGKILL);
                (void) sd_event_source_set_userdata(a->child, NULL);
                if (sd_event_source_set_floating(a->child, true) < 0)
                        (void) sd_event_source_set_child_process_own(a->child, true);
                sd_event_source_unref(a->child);
        }
        sd_event_source_disable_unref(a->timeout);
        pipe_clear(&a->out);
        pipe_clear(&a->err);
        free(a->command);
        free(a);
        return NULL;
}

static void finish(AzureCli *a, const siginfo_t *si) {
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_free_ char *message = NULL;
        char what[512];
        int r;

        pipe_drain(&a->out);
        pipe_drain(&a->err);

        if (a->timed_out) {
                snprintf(what, sizeof what, "%s did not answer within %llus and was stopped", a->command,
                         (unsigned long long) (AZURECLI_TIMEOUT / USEC_PER_SEC));
                a->cb->on_done(-EIO, NULL, a->sent, what, a->cb->userdata);
                return;
        }
        if (si->si_code == CLD_EXITED && si->si_status == 0) {
                if (a->out.truncated)
                        r = -EFBIG;
                else
                        r = azurecli_parse_token(a->out.buf ?: "", a->out.len, now_realtime(), &t);
                if (r >= 0) {
                        a->cb->on_done(0, &t, a->sent, NULL, a->cb->userdata);
                        return;
                }
                snprintf(what, sizeof what, "%s printed no usable token (%s)", a->command,
                         r == -ESTALE  ? "it has already expired"
                         : r == -EFBIG ? "too much output"
                                       : "not az's answer");
                a->cb->on_done(-EIO, NULL, a->sent, what, a->cb->userdata);
                return;
        }

        if (azurecli_failure_needs_login(a->err.buf ?: "", a->err.len, &message)) {
                a->cb->on_done(-ENOKEY, NULL, a->sent, message ?: "Please run 'az login' to setup account.",
                               a->cb->userdata);
                return;
        }
        if (si->si_code == CLD_EXITED && si->si_status == 127 && !message)
                snprintf(what, sizeof what, "cannot run %s: not found on PATH, or not executable (is az installed?)",
                         a->command);
        else if (si->si_code == CLD_EXITED)
                snprintf(what, sizeof what, "%s exited with status %d%s%s", a->command, si->si_status,
                         message ? ": " : "", message ?: "");
        else
                snprintf(what, sizeof what, "%s was killed by signal %d", a->command, si->si_status);
        a->cb->on_done(-EIO, NULL, a->sent, what, a->cb->userdata);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        AzureCli *a = userdata;

        if (!a) /* a dropped run's child: reaped, its source stays off until the loop goes */
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        a->child = sd_event_source_disable_unref(a->child);
        /* Whatever az left running in its group goes with it. */
        (void) kill(-a->pid, SIGKILL);
        a->timeout = sd_event_source_disable_unref(a->timeout);
        finish(a, si);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        AzureCli *a = userdata;

        log_warning("Profile %s: %s still runs after %llus; stopping it.", a->name, a->command,
                    (unsigned long long) (AZURECLI_TIMEOUT / USEC_PER_SEC));
        a->timed_out = true;
        (void) kill(-a->pid, SIGKILL);
        return 0;
}

/* Every place the child may find az_command, built before fork() (the child only execs). */
static int command_candidates(const char *command, char ***ret) {
        const char *path = getenv("PATH");
        char **v;
        size_t n = 0;

        if (strchr(command, '/')) {
                v = calloc(2, sizeof *v);
                if (!v || !(v[0] = strdup(command))) {
                        free(v);
                        return -ENOMEM;
                }
                *ret = v;
                return 0;
        }
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        v = calloc(strlen(path) + 2, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (const char *p = path;;) {
                size_t k = strcspn(p, ":");

                if (k > 0 && p[0] == '/' && asprintf(&v[n], "%.*s/%s", (int) k, p, command) < 0) {
                        strv_free(v);
                        return -ENOMEM;
                }
                if (k > 0 && p[0] == '/')
                        n++;
                if (!p[k])
                        break;
                p += k + 1;
        }
        *ret = v;
        return 0;
}

int azurecli_acquire(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                     const AzureCliCallbacks *callbacks, AzureCli **ret) {
        _cleanup_(azurecli_freep) AzureCli *a = NULL;
        _cleanup_(strv_freep) char **candidates = NULL;
        _cleanup_free_ char *env_config_dir = NULL;
        _cleanup_free_ char **envp = NULL;
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, null_fd = -1, r;
        const char *argv[12];
        size_t n = 0, k = 0, i = 0;
        extern char **environ;
        sigset_t none;
        pid_t pid;

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        *a = (AzureCli) {
                .ctx = ctx,
                .name = name,
                .cb = callbacks,
                .out = { .fd = -1 },
                .err = { .fd = -1 },
        };

        a->command = strdup(cfg->az_command ?: "az");
        if (!a->command)
                return -ENOMEM;
        r = command_candidates(a->command, &candidates);
        if (r < 0)
                return r;
        argv[i++] = "az";
        argv[i++] = "account";
        argv[i++] = "get-access-token";
        argv[i++] = "--resource";
        argv[i++] = cfg->server_id;
        argv[i++] = "--output";
        argv[i++] = "json";
        if (cfg->tenant && !streq(cfg->tenant, "organizations") && !streq(cfg->tenant, "common")) {
                argv[i++] = "--tenant";
                argv[i++] = cfg->tenant;
        }
        argv[i] = NULL;

        while (environ[n])
                n++;
        envp = calloc(n + 2, sizeof *envp);
        if (!envp)
                return -ENOMEM;
        for (size_t j = 0; j < n; j++)
                if (!(cfg->azure_config_dir && string_has_prefix(environ[j], "AZURE_CONFIG_DIR=")) &&
                    !string_has_prefix(environ[j], "NOTIFY_SOCKET=") && !string_has_prefix(environ[j], "LISTEN_"))
                        envp[k++] = environ[j];
        if (cfg->azure_config_dir) {
                if (asprintf(&env_config_dir, "AZURE_CONFIG_DIR=%s", cfg->azure_config_dir) < 0)
                        return -ENOMEM;
                envp[k++] = env_config_dir;
        }

        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }

        a->sent = now_realtime();
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto fail;
        }
        if (pid == 0) {
                /* Only async-signal-safe calls from here: the daemon has threads. */
                (void) setpgid(0, 0);
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(null_fd, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
                        _exit(126);
                (void) close_range(3, ~0U, 0);
                for (char **c = candidates; *c; c++)
                        execve(*c, (char *const *) argv, envp);
                _exit(127);
        }
        /* Also from here, so the group exists before anyone may kill it. */
        (void) setpgid(pid, pid);
        a->pid = pid;
        (void) close(null_fd);
        (void) close(out[1]);
        (void) close(err[1]);
        a->out.fd = out[0];
        a->err.fd = err[0];
        (void) fcntl(a->out.fd, F_SETFL, O_NONBLOCK);
        (void) fcntl(a->err.fd, F_SETFL, O_NONBLOCK);

        r = sd_event_add_child(ctx->event, &a->child, pid, WEXITED, on_child_exit, a);
        if (r < 0) {
                (void) kill(-pid, SIGKILL);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0); /* just killed: returns at once */
                return r;
        }
        r = sd_event_add_io(ctx->event, &a->out.source, a->out.fd, EPOLLIN, on_pipe, &a->out);
        if (r >= 0)
                r = sd_event_add_io(ctx->event, &a->err.source, a->err.fd, EPOLLIN, on_pipe, &a->err);
        if (r >= 0)
                r = sd_event_add_time_relative(ctx->event, &a->timeout, CLOCK_MONOTONIC, AZURECLI_TIMEOUT,
                                               USEC_PER_SEC / 10, on_timeout, a);
        if (r < 0)
                return r; /* azurecli_free() kills it and reaps it later */

        log_debug("Profile %s: asking %s for a token (pid %d).", name, cfg->az_command, (int) pid);
        *ret = TAKE_PTR(a);
        return 0;

fail:
        if (null_fd >= 0)
                (void) close(null_fd);
        for (size_t j = 0; j < 2; j++) {
                if (out[j] >= 0)
                        (void) close(out[j]);
                if (err[j] >= 0)
                        (void) close(err[j]);
        }
        return r;
}

int azurecli_check_profile(const ProfileConfig *p, ConfigErrors *errors) {
        _cleanup_(strv_freep) char **candidates = NULL;
        char **t, *line;
        int r;

        if (p->auth != AUTH_AZURECLI)
                return 0;
        r = command_candidates(p->az_command ?: "az", &candidates);
        if (r < 0)
                return r;
        for (char **c = candidates; *c; c++)
                if (access(*c, X_OK) == 0)
                        return 0;
        if (asprintf(&line,
                     "profile %s: auth = azurecli needs the Azure CLI, but %s %s: install it (apt install azure-cli, "
                     "or pip install azure-cli) or set az_command",
                     p->name, p->az_command ?: "az",
                     strchr(p->az_command ?: "az", '/') ? "is not an executable file" : "is not found on PATH") < 0)
                return -ENOMEM;
        t = reallocarray(errors->lines, errors->n + 2, sizeof *t);
        if (!t) {
                free(line);
                return -ENOMEM;
        }
        t[errors->n++] = line;
        t[errors->n] = NULL;
        errors->lines = t;
        return 1;
}
