/* `aksspark-tokenctl init`: a config.ini from the kubeconfig `az aks get-credentials` wrote. The
 * shell around configgen.c: finds and reads the files, checks each profile with the daemon's own
 * parser, writes atomically, and says what it did and what to run next. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"
#include "shared/config-env.h"
#include "shared/config.h"
#include "shared/kubeconfig.h"
#include "tokenctl/configgen.h"
#include "tokenctl/tokenctl.h"

#define KUBECONFIG_MAX (4 * 1024 * 1024)

typedef struct KubeconfigText {
        char *data;
        size_t len;
} KubeconfigText;

static void kubeconfig_text_wipe(KubeconfigText *t) {
        if (t->data)
                erase_and_free(t->data, t->len);
}

/* Read the whole file into one buffer of its size: no realloc() leaves a copy behind. */
static int kubeconfig_text_read(const char *path, KubeconfigText *ret) {
        _cleanup_close_ int fd = -EBADF;
        KubeconfigText t = {};
        struct stat st;

        /* O_NONBLOCK: a FIFO at the path must not stall init (it is refused below). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size > KUBECONFIG_MAX)
                return -EFBIG;
        t.data = malloc((size_t) st.st_size + 1);
        if (!t.data)
                return -ENOMEM;
        while (t.len < (size_t) st.st_size) {
                ssize_t n = read(fd, t.data + t.len, (size_t) st.st_size - t.len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        kubeconfig_text_wipe(&t);
                        return r;
                }
                if (n == 0)
                        break;
                t.len += (size_t) n;
        }
        t.data[t.len] = 0;
        *ret = t;
        return 0;
}

static int init_fail(int status, const char *format, ...) _printf_(2, 3);
static int init_fail(int status, const char *format, ...) {
        va_list ap;

        fputs("aksspark-tokenctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

int tokenctl_setup_option(TokenctlSetupArgs *a, char option, const char *value) {
        switch (option) {
        case 'c':
                a->config = value;
                break;
        case 'k':
                a->kubeconfig = value;
                break;
        case 'x':
                if (a->n_contexts >= TOKENCTL_MAX_CONTEXTS)
                        return -E2BIG;
                a->contexts[a->n_contexts++] = (char *) value;
                break;
        case 'f':
                a->force = true;
                break;
        }
        return 0;
}

bool tokenctl_setup_only_config(const TokenctlSetupArgs *a) {
        return !a->kubeconfig && a->n_contexts == 0 && !a->force;
}

/* --kubeconfig, else the first file of $KUBECONFIG (kubectl merges them; the first is the one
 * `az aks get-credentials` writes to), else ~/.kube/config; absolute. */
static int kubeconfig_path(const char *arg, const char *home, char **ret) {
        _cleanup_free_ char *p = NULL;
        const char *e = getenv("KUBECONFIG");
        char cwd[PATH_MAX];

        if (e)
                e += strspn(e, ":"); /* kubectl skips empty entries */
        if (arg)
                p = strdup(arg);
        else if (e && *e)
                p = strndup(e, strcspn(e, ":"));
        else if (asprintf(&p, "%s/.kube/config", home) < 0)
                p = NULL;
        if (!p)
                return -ENOMEM;
        if (p[0] != '/') {
                char *a;

                if (!getcwd(cwd, sizeof cwd))
                        return -errno;
                if (asprintf(&a, "%s/%s", cwd, p) < 0)
                        return -ENOMEM;
                free(p);
                p = a;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* path with the home directory written as "~", as a person would write it. */
static char *path_for_people(const char *path, const char *home) {
        size_t n = strlen(home);
        char *s;

        if (n > 1 && strncmp(path, home, n) == 0 && path[n] == '/')
                return asprintf(&s, "~%s", path + n) < 0 ? NULL : s;
        return strdup(path);
}

/* The parser's problem without its "file:line: " prefix. */
static const char *problem_text(const char *line) {
        const char *c = strstr(line, ": ");

        return c ? c + 2 : line;
}

/* Every profile must read back through the daemon's parser on its own: one that does not is
 * skipped with the parser's words, instead of spoiling the whole file. */
static int check_profiles(Configgen *g, const ConfigEnv *env) {
        for (size_t i = 0; i < g->n_profiles;) {
                _cleanup_(config_freep) Config *c = NULL;
                ConfigErrors errors = {};
                const char *s = g->profiles[i].section;
                int r = config_parse("config.ini", s, strlen(s), env, &c, &errors);

                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        r = configgen_skip_profile(
                                g, i, errors.n > 0 ? problem_text(errors.lines[0]) : "the daemon would refuse it");
                        config_errors_clear(&errors);
                        if (r < 0)
                                return r;
                        continue;
                }
                i++;
        }
        return 0;
}

static void print_skipped(FILE *f, const Configgen *g) {
        for (size_t i = 0; i < g->n_skipped; i++)
                fprintf(f, "  skipped context %s: %s\n", g->skipped[i].context, g->skipped[i].why);
}

int tokenctl_init(const TokenctlSetupArgs *a) {
        _cleanup_free_ char *home = NULL, *kpath = NULL, *kshown = NULL, *config_path = NULL, *config_shown = NULL,
                            *out = NULL;
        /* A kubeconfig holds secrets too (client keys, static tokens, the azure provider's
         * cached tokens): its text is wiped, not just freed. */
        _cleanup_(kubeconfig_text_wipe) KubeconfigText text = {};
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts contexts = {};
        _cleanup_(configgen_done) Configgen g = {};
        _cleanup_(config_freep) Config *config = NULL;
        ConfigErrors errors = {};
        ConfigEnv env;
        const char *unknown = NULL;
        struct stat st;
        int r;

        r = config_env_from_process(&env, &home);
        if (r < 0)
                return init_fail(1, "cannot find your home directory: %s", strerror(-r));
        r = kubeconfig_path(a->kubeconfig, env.home, &kpath);
        if (r < 0)
                return init_fail(1, "cannot name the kubeconfig: %s", strerror(-r));
        kshown = path_for_people(kpath, env.home);
        if (a->config)
                config_path = strdup(a->config);
        else if (config_default_path(&env, &config_path) < 0)
                config_path = NULL;
        if (!kshown || !config_path)
                return init_fail(1, "out of memory");
        config_shown = path_for_people(config_path, env.home);
        if (!config_shown)
                return init_fail(1, "out of memory");

        r = kubeconfig_text_read(kpath, &text);
        if (r == -ENOENT)
                return init_fail(1,
                                 "there is no kubeconfig at %s: run `az aks get-credentials --resource-group RG --name "
                                 "CLUSTER` first, or pass --kubeconfig PATH.",
                                 kshown);
        if (r == -EFBIG)
                return init_fail(1, "%s is larger than %d MiB, which is no kubeconfig.", kshown, KUBECONFIG_MAX >> 20);
        if (r == -EINVAL)
                return init_fail(1, "%s is not a regular file, so no kubeconfig.", kshown);
        if (r < 0)
                return init_fail(1, "cannot read the kubeconfig %s: %s", kshown, strerror(-r));
        r = kubeconfig_list_contexts(text.data, text.len, &contexts);
        if (r == -EBADMSG)
                return init_fail(1,
                                 "%s is not a kubeconfig kubectl would read (not YAML, malformed contexts, or a "
                                 "context name listed twice).",
                                 kshown);
        if (r < 0)
                return init_fail(1, "cannot read the kubeconfig %s: %s", kshown, strerror(-r));

        r = configgen_plan(&contexts,
                           &(ConfiggenOptions) {
                                   .kubeconfig = kshown,
                                   .only = a->contexts,
                                   .n_only = a->n_contexts,
                                   .key_known = config_profile_key_is_known,
                           },
                           &g, &unknown);
        if (r == -ENOENT)
                return init_fail(64, "%s has no context named '%s' (see `kubectl config get-contexts`).", kshown,
                                 unknown);
        if (r >= 0)
                r = check_profiles(&g, &env);
        if (r < 0)
                return init_fail(1, "out of memory");
        if (g.n_profiles == 0) {
                fprintf(stderr,
                        "aksspark-tokenctl: no Azure AD (AKS) context in %s%s: run `az aks get-credentials "
                        "--resource-group RG --name CLUSTER` for an AKS cluster with Azure AD, then init again.\n",
                        kshown, contexts.n == 0 ? " (it lists no context)" : "");
                print_skipped(stderr, &g);
                return 1;
        }

        out = configgen_text(&g, kshown);
        if (!out)
                return init_fail(1, "out of memory");
        /* The whole file too: the daemon must start with what init wrote. */
        r = config_parse(config_path, out, strlen(out), &env, &config, &errors);
        if (r < 0) {
                r = init_fail(1,
                              "the configuration made from %s does not pass the daemon's check (%s); nothing written.",
                              kshown, errors.n > 0 ? errors.lines[0] : strerror(-r));
                config_errors_clear(&errors);
                return r;
        }

        if (!a->force && lstat(config_path, &st) >= 0)
                return init_fail(1,
                                 "%s exists already; pass --force to replace it (init writes a new file, it does not "
                                 "merge).",
                                 config_shown);
        r = atomic_replace(config_path, out, strlen(out), 0600, ATOMIC_MKDIR_PARENTS, NULL);
        if (r < 0)
                return init_fail(1, "cannot write %s: %s", config_shown, strerror(-r));

        printf("Wrote %s: %zu profile%s from %s.\n", config_shown, g.n_profiles, g.n_profiles == 1 ? "" : "s", kshown);
        for (size_t i = 0; i < g.n_profiles; i++) {
                const ProfileConfig *pc = config_find_profile(config, g.profiles[i].name);
                _cleanup_free_ char *summary = pc ? profile_config_summary(pc) : NULL;

                printf("  context %s -> %s (sign-in: %s)\n", g.profiles[i].context, summary ?: g.profiles[i].name,
                       g.profiles[i].auth);
        }
        print_skipped(stdout, &g);
        printf("Next:\n");
        for (size_t i = 0; i < g.n_profiles; i++)
                if (g.profiles[i].note)
                        printf("  %s\n", g.profiles[i].note);
        /* The service too: it keeps the outputs fresh from login on, not from the first call. */
        printf("  systemctl --user enable --now aksspark-tokend.socket aksspark-tokend.service   (running already: "
               "aksspark-tokenctl reload)\n");
        for (size_t i = 0; i < g.n_profiles; i++)
                if (strcmp(g.profiles[i].auth, "device_code") == 0 || strcmp(g.profiles[i].auth, "browser") == 0) {
                        if (strcmp(g.profiles[i].name, "default") == 0 || g.n_profiles == 1)
                                printf("  aksspark-tokenctl login\n");
                        else
                                printf("  aksspark-tokenctl --profile %s login\n", g.profiles[i].name);
                }
        printf("  aksspark-tokenctl doctor\n");
        return 0;
}
