/* notify_command: run once per event when a profile needs a person, as a child the loop
 * watches, with a time limit. Never given a token. */
#pragma once

#include <systemd/sd-event.h>

#include "base/macro.h"
#include "base/util.h"

#define NOTIFY_COMMAND_TIMEOUT (30 * USEC_PER_SEC)

/* Whether "NAME=value" from the daemon's environment is passed on to the command: PATH, HOME,
 * USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TERM, DISPLAY, WAYLAND_DISPLAY, XAUTHORITY,
 * XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS. Nothing else (never IDENTITY_HEADER). Pure. */
bool notify_env_passes(const char *assignment);

/* Start command (run through /bin/sh -c) with the environment notify_env_passes() lets
 * through and AKSSPARK_PROFILE, AKSSPARK_STATE and AKSSPARK_MESSAGE set. Fire and forget: its failure is logged and changes nothing. */
int notify_command_run(sd_event *e, const char *command, const char *profile, const char *state, const char *message);
