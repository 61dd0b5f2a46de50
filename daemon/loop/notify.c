/* notify_command: tell a person a profile needs them, through a child the loop watches. */
#include <errno.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "loop/notify.h"

typedef struct NotifyChild {
        pid_t pid;
        sd_event_source *child;
        sd_event_source *timeout;
        char *profile;
} NotifyChild;

static void notify_child_free(NotifyChild *c) {
        sd_event_source_disable_unref(c->child);
        sd_event_source_disable_unref(c->timeout);
        free(c->profile);
        free(c);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        NotifyChild *c = userdata;

        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_debug("notify_command for profile %s finished.", c->profile);
        else if (si->si_code == CLD_EXITED)
                log_warning("notify_command for profile %s exited with status %d.", c->profile, si->si_status);
        else
                log_warning("notify_command for profile %s was killed by signal %d.", c->profile, si->si_status);
        notify_child_free(c);
        return 0;
}

static int on_child_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        NotifyChild *c = userdata;

        log_warning("notify_command for profile %s still runs after %llus, killing it.", c->profile,
                    (unsigned long long) (NOTIFY_COMMAND_TIMEOUT / USEC_PER_SEC));
        (void) kill(c->pid, SIGKILL);
        return 0;
}

/* What the command may see of the daemon's environment: where to find programs and how to
 * reach the person (desktop session, mail, locale). Nothing else: the daemon's environment may
 * hold App Service's IDENTITY_HEADER and other credentials a notifier has no business with. */
static const char *const notify_env_allowed[] = {
        "PATH",       "HOME", "USER",    "LOGNAME",         "SHELL",           "LANG",
        "LANGUAGE",   "TZ",   "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",
        "XAUTHORITY", "TERM",
};

bool notify_env_passes(const char *assignment) {
        const char *eq = strchr(assignment, '=');

        if (!eq)
                return false;
        if (string_has_prefix(assignment, "LC_"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(notify_env_allowed); i++)
                if (strlen(notify_env_allowed[i]) == (size_t) (eq - assignment) &&
                    strncmp(assignment, notify_env_allowed[i], eq - assignment) == 0)
                        return true;
        return false;
}

int notify_command_run(sd_event *e, const char *command, const char *profile, const char *state, const char *message) {
        _cleanup_free_ char *env_profile = NULL, *env_state = NULL, *env_message = NULL;
        _cleanup_free_ char **envp = NULL;
        extern char **environ;
        size_t n = 0, k = 0;
        NotifyChild *c;
        sigset_t all;
        pid_t pid;
        int r;

        if (!command)
                return 0;

        /* Everything the child needs is built before fork(): libcurl's resolver threads may hold
         * the malloc lock at the instant we fork, so the child only calls async-signal-safe code. */
        if (asprintf(&env_profile, "AKSSPARK_PROFILE=%s", profile) < 0 ||
            asprintf(&env_state, "AKSSPARK_STATE=%s", state) < 0 ||
            asprintf(&env_message, "AKSSPARK_MESSAGE=%s", message) < 0)
                return -ENOMEM;
        while (environ[n])
                n++;
        envp = calloc(n + 4, sizeof(char *));
        if (!envp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (notify_env_passes(environ[i]))
                        envp[k++] = environ[i];
        envp[k++] = env_profile;
        envp[k++] = env_state;
        envp[k++] = env_message;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->profile = strdup(profile);
        if (!c->profile) {
                free(c);
                return -ENOMEM;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                notify_child_free(c);
                return r;
        }
        if (pid == 0) {
                /* The daemon blocks the signals sd-event handles; the command should not inherit that. */
                sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                (void) close_range(3, ~0U, 0);
                execve("/bin/sh", (char *[]) { (char *) "sh", (char *) "-c", (char *) command, NULL }, envp);
                _exit(127);
        }

        c->pid = pid;
        r = sd_event_add_child(e, &c->child, pid, WEXITED, on_child_exit, c);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                notify_child_free(c);
                return r;
        }
        r = sd_event_add_time_relative(e, &c->timeout, CLOCK_MONOTONIC, NOTIFY_COMMAND_TIMEOUT, USEC_PER_SEC,
                                       on_child_timeout, c);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the notify_command time limit, it may run unbounded: %m");
        log_info("Ran notify_command for profile %s (%s), pid %d.", profile, state, (int) pid);
        return 0;
}
